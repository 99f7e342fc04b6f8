"""Issue 20 (finding 14): deeply nested JSON is bad input everywhere JSON is read - the tablet's
form, the door's API, the sync endpoints and USB bundles - a 400 `bad_json`, never a 500, and the
server goes on answering. The depth is refused before the JSON parser sees the text (a
RecursionError inside CPython 3.11's decoder can leave the interpreter in a bad state)."""

import gzip
import json

import pytest

from kiosk.people import tablets
from kiosk.safejson import MAX_DEPTH, TooDeep, loads
from sync.protocol import SyncError, decode_body

DEEP = 100_000  # a sync body may be megabytes
WEB_DEEP = 2_500  # a tablet's or scanner's body is at most 16 KB; CPython recurses out at 1,000


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.fixture
def tab(app, db, open_event):
    paired = tablets.pair_tablet(db, open_event["cohort_id"], "A")
    _, token = tablets.claim_pairing(db, paired["code"])
    browser = app.test_client()
    browser.set_cookie("kiosk_tablet", token)
    return browser


@pytest.mark.parametrize("body", [
    nested(WEB_DEEP),
    '{"key": "' + "k" * 20 + '", "fields": {"first_name": ' + nested(WEB_DEEP, '"x"') + "}}",
    '{"key": "' + "k" * 20 + '", "fields": {}, "made_at": ' + "{\"a\":" * WEB_DEEP + "1" + "}" * WEB_DEEP + "}",
], ids=["whole-body", "inside-a-field", "deep-objects"])
def test_a_tablet_sending_deeply_nested_json_gets_bad_json(tab, body):
    answer = tab.post("/register/submit", data=body, content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["reason"] == "bad_json"
    assert tab.post("/register/submit", json={"key": "k" * 20, "fields": {}}).status_code != 500


def test_the_door_api_answers_bad_json_to_deep_nesting(app, db, open_event, accounts):
    from kiosk.trust import accounts as auth

    token = auth.issue_token(db, "door")
    client = app.test_client()
    body = '{"code": ' + nested(WEB_DEEP, '"X"') + "}"
    answer = client.post("/api/checkins", data=body, content_type="application/json",
                         headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and answer.get_json()["reason"] == "bad_json"
    assert client.post("/api/checkins", json={"code": open_event["people"][0]["code"]},
                       headers={"Authorization": f"Bearer {token}"}).get_json()["ok"] is True


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_sync_body_nested_deeply_anywhere_is_bad_json(compress):
    raw = ('{"protocol": 3, "program_id": "p", "changes": [{"payload": ' + nested(DEEP) + "}]}").encode()
    with pytest.raises(SyncError) as refused:
        decode_body(gzip.compress(raw) if compress else raw, "gzip" if compress else None)
    assert refused.value.reason == "bad_json"


def test_the_depth_check_lets_every_genuine_shape_through_and_ignores_brackets_in_text():
    text = json.dumps({"a": ["[[[[{{{{" * 100, {"b": [1, 2, {"c": "]]]}}}\\\"[["}]}], "d": nested(MAX_DEPTH - 1)})
    assert loads(text)["a"][1]["b"][2]["c"] == "]]]}}}\\\"[["
    assert loads(nested(MAX_DEPTH).encode()) is not None
    for deep in (nested(MAX_DEPTH + 1), "[" * 10 + '"unterminated', '{"a": [' * 40 + "]" * 5):
        with pytest.raises(ValueError):
            loads(deep)
    assert issubclass(TooDeep, ValueError)


def test_a_bundle_whose_manifest_nests_deeply_is_refused_as_tampered(tmp_path):
    from sync.bundle import read_bundle

    path = tmp_path / "deep.jsonl.gz"
    path.write_bytes(gzip.compress(nested(DEEP).encode() + b"\n"))
    with pytest.raises(SyncError) as refused:
        read_bundle(path, lambda program_id: True)
    assert refused.value.reason == "bundle_tampered"
