"""The one error contract: every reason registered with a status and a Thai message, one JSON body everywhere."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from kiosk import create_app
from kiosk.errors import REASONS, KioskError, error_body, status_of
from kiosk.i18n import po_path
from sync.central import create_app as create_central
from sync.peer import create_peer_app

ROOT = Path(__file__).resolve().parent.parent
# A reason written at a raise or answer site: SomethingError("code", …), error_response("code", …), …
RAISED = re.compile(r"""(?:Error|error_response|error_body|_error)\(\s*(?:REASON_\w+|"([a-z][a-z_]+)")""")
REASON_CONSTANT = re.compile(r'^REASON_\w+ = "([a-z_]+)"', re.M)


def _sources():
    for folder in ("kiosk", "sync"):
        yield from (ROOT / folder).rglob("*.py")


def _raised_reasons() -> set[str]:
    found = set()
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        found |= {m.group(1) for m in RAISED.finditer(text) if m.group(1)}
        found |= set(REASON_CONSTANT.findall(text))
    return found


def test_every_reason_raised_in_the_code_is_registered():
    raised = _raised_reasons()
    assert len(raised) > 40, "the scan of raise sites found too little: the pattern broke"
    # Successful check-in outcomes are statuses, not errors.
    assert raised - set(REASONS) - {"checked_in", "already_checked_in", "checked_out"} == set()


def test_every_registered_reason_has_a_status_and_a_thai_message():
    with po_path("th").open("rb") as f:
        catalog = read_po(f, locale="th")
    for code, reason in REASONS.items():
        assert re.fullmatch(r"[a-z][a-z_]*", code)
        assert 400 <= reason.status <= 599, code
        translated = catalog.get(reason.message)
        assert translated is not None and translated.string, f"{code}: no Thai for {reason.message!r}"
        assert re.search("[\u0e00-\u0e7f]", translated.string), code


def test_an_unregistered_reason_answers_400_instead_of_crashing():
    assert status_of("no_such_reason_ever") == 400
    assert KioskError("no_such_reason_ever").status == 400


def test_a_domain_error_carries_its_reason_status_and_field():
    exc = KioskError("bad_phone", "phone 'abc' is not a Thai number", "phone")
    assert (exc.reason, exc.status, exc.field, str(exc)) == ("bad_phone", 400, "phone",
                                                              "phone 'abc' is not a Thai number")
    assert exc.body() == {"ok": False, "reason": "bad_phone", "error": "phone 'abc' is not a Thai number"}
    assert error_body("not_found")["error"] == REASONS["not_found"].message


def _crash():
    raise RuntimeError("boom: an unexpected bug")


@pytest.fixture
def apps(tmp_path):
    """The three web apps, each with a route under /api/ that crashes."""
    (tmp_path / "kiosk").mkdir()
    kiosk = create_app({"DATA_DIR": str(tmp_path / "kiosk"), "TESTING": False})
    peer = create_peer_app(tmp_path / "peer")
    central = create_central({"CENTRAL_DATA": str(tmp_path / "central")})
    for app in (kiosk, peer, central):
        app.add_url_rule("/api/test-crash", "test_crash", _crash)
    return {"kiosk": kiosk, "peer": peer, "central": central}


def _shape(response):
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)[:200]
    assert set(body) >= {"ok", "reason", "error"} and body["ok"] is False and body["error"]
    return response.status_code, body["reason"]


@pytest.mark.parametrize("name", ["kiosk", "peer", "central"])
def test_the_json_error_body_is_the_same_on_every_server(apps, name):
    client = apps[name].test_client()
    assert _shape(client.get("/api/no-such-thing")) == (404, "not_found")
    assert _shape(client.post("/api/sync/no-such-endpoint", json={})) == (404, "not_found")
    assert _shape(client.get("/api/sync/hello")) == (405, "method_not_allowed")
    assert _shape(client.post("/api/sync/hello", data=b"{not json", headers={"X-Device": "x"})) == (
        401, "unauthenticated")
    assert _shape(client.post("/api/sync/enrol", data=b"{not json")) == (400, "bad_json")
    status, reason = _shape(client.get("/api/test-crash"))
    assert (status, reason) == (500, "server_error")
    assert "boom" not in client.get("/api/test-crash").get_data(as_text=True)


@pytest.mark.parametrize("name", ["kiosk", "central"])
def test_pages_answer_an_error_page_in_thai_not_json(apps, name):
    response = apps[name].test_client().get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "ไม่พบหน้านี้" in response.get_data(as_text=True)
