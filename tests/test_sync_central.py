"""The central server over real HTTP, on SQLite and on a real PostgreSQL 15: convergence, bad
input refused whole, authentication, and forged origins."""

import copy
import http.client
import json

import pytest
import requests

from kiosk.store import changes
from sync import auth
from sync.client import sync_once
from sync.protocol import PROTOCOL, dumps

from support import Kiosk, assert_invariant, enrol
from support import sync_post as post


def push_body(program_id, batch, **extra):
    return dumps({"protocol": PROTOCOL, "program_id": program_id, "changes": batch, **extra})


@pytest.fixture
def site(tmp_path, central):
    """A kiosk with a program, 10 people and their scans, enrolled with the central server."""
    kiosk = Kiosk(tmp_path / "door-a")
    program = kiosk.create_program()
    people = kiosk.register(program, 10)
    kiosk.scan_many(program, people)
    creds = enrol(kiosk, central.url, central.storage())
    yield kiosk, program, creds
    kiosk.close()


def test_two_venues_converge_through_central_and_count_each_attendance_once(tmp_path, central, site):
    door_a, program, _ = site
    door_b = Kiosk(tmp_path / "door-b")
    enrol(door_b, central.url, central.storage(), programs=[program["program_id"]])
    sync_once(door_a.data_dir)
    sync_once(door_b.data_dir)
    people = [r[0] for r in door_b.table("participants")]
    door_b.scan_many(program, people[:5])          # the same people scanned again at the other door
    door_b.register(program, 3, prefix="สมหญิง")
    sync_once(door_b.data_dir)
    sync_once(door_a.data_dir)
    assert door_a.domain() == door_b.domain()
    assert_invariant(central.storage(), [door_a, door_b])
    assert central.storage().attendance_count() == 10 * 2


def test_a_roster_edit_made_centrally_reaches_the_kiosk(central, site):
    kiosk, program, _ = site
    sync_once(kiosk.data_dir)
    person = kiosk.table("participants")[0][0]
    central.storage().originate(program["program_id"], "participants", person, {"phone": "0812345678"})
    sync_once(kiosk.data_dir)
    assert kiosk.db.execute("select phone from participants where id = ?", [person]).fetchone()[0] == "0812345678"


def _bad_batches(kiosk, program):
    good = changes.changes_since(kiosk.db, program["program_id"], {}, limit=-1)[:6]
    gap = [c for c in good if c["seq"] != 3]
    unknown_entity = copy.deepcopy(good)
    unknown_entity[-1]["entity"] = "salaries"
    unknown_field = copy.deepcopy(good)
    unknown_field[-1]["payload"]["salary"] = 1
    other = copy.deepcopy(good)
    other[-1]["program_id"] = "another-program"
    pid = program["program_id"]
    return {
        "bad_json": b'{"protocol": 1, "program_id": ',
        "seq_gap": push_body(pid, gap),
        "unknown_entity": push_body(pid, unknown_entity),
        "unknown_field": push_body(pid, unknown_field),
        "wrong_program": push_body(pid, other),
        "protocol_version": dumps({"protocol": PROTOCOL + 1, "program_id": pid, "changes": good}),
    }


@pytest.mark.parametrize("reason, status", [
    ("bad_json", 400), ("seq_gap", 409), ("unknown_entity", 422), ("unknown_field", 422),
    ("wrong_program", 403), ("protocol_version", 400),
])
def test_bad_batch_is_refused_with_its_reason_and_nothing_applied(central, site, reason, status):
    kiosk, program, creds = site
    response = post(central.url, "push", _bad_batches(kiosk, program)[reason], creds)
    assert response.status_code == status
    assert response.json() == {"ok": False, "reason": reason, "error": response.json()["error"]}
    assert central.storage().change_count() == 0
    sync_once(kiosk.data_dir)  # the device itself still syncs afterwards
    assert_invariant(central.storage(), [kiosk])


def test_a_hundred_megabyte_body_is_refused_before_it_is_read(central, site):
    _, _, creds = site
    connection = http.client.HTTPConnection("127.0.0.1", central.port, timeout=10)
    connection.putrequest("POST", "/api/sync/push")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(100 * 1024 * 1024))
    for name, value in auth.sign(creds["device_id"], creds["secret"], "POST", "/api/sync/push", b"").items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(b'{"protocol": 1, "changes": [' + b" " * 65536)
    response = connection.getresponse()
    assert response.status == 413
    assert central.storage().change_count() == 0


def test_a_gzip_bomb_is_refused(central, site):
    import gzip
    _, _, creds = site
    bomb = gzip.compress(b" " * (200 * 1024 * 1024))
    response = post(central.url, "hello", bomb, creds, {"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["reason"]) == (413, "payload_too_large")


def test_device_enrolled_for_one_program_cannot_push_another(tmp_path, central, site):
    kiosk, program, _ = site
    other = Kiosk(tmp_path / "other")
    stranger_program = other.create_program()
    creds = enrol(other, central.url, central.storage(), programs=[program["program_id"]])
    batch = changes.changes_since(other.db, stranger_program["program_id"], {})
    response = post(central.url, "push", push_body(stranger_program["program_id"], batch), creds)
    assert (response.status_code, response.json()["reason"]) == (403, "wrong_program")


def _hello():
    return dumps({"protocol": PROTOCOL, "programs": {}})


def test_unsigned_request_is_unauthenticated(central, site):
    response = post(central.url, "hello", _hello())
    assert (response.status_code, response.json()["reason"]) == (401, "unauthenticated")


def test_bad_signature_is_unauthenticated(central, site):
    _, _, creds = site
    response = post(central.url, "hello", _hello(), {**creds, "secret": auth.new_secret()})
    assert (response.status_code, response.json()["reason"]) == (401, "unauthenticated")


def test_unknown_device_is_unenrolled(central, site):
    response = post(central.url, "hello", _hello(), {"device_id": "f" * 36, "secret": auth.new_secret()})
    assert (response.status_code, response.json()["reason"]) == (401, "unenrolled")


def test_revoked_device_is_refused(central, site):
    kiosk, _, creds = site
    assert post(central.url, "hello", _hello(), creds).status_code == 200
    central.storage().revoke(creds["device_id"])
    response = post(central.url, "hello", _hello(), creds)
    assert (response.status_code, response.json()["reason"]) == (403, "revoked_device")


def test_replayed_request_is_refused(central, site):
    kiosk, program, creds = site
    raw = push_body(program["program_id"], changes.changes_since(kiosk.db, program["program_id"], {})[:5])
    headers = {"Content-Type": "application/json",
               **auth.sign(creds["device_id"], creds["secret"], "POST", "/api/sync/push", raw)}
    first = requests.post(f"{central.url}/api/sync/push", data=raw, headers=headers, timeout=10)
    again = requests.post(f"{central.url}/api/sync/push", data=raw, headers=headers, timeout=10)
    assert first.status_code == 200
    assert (again.status_code, again.json()["reason"]) == (401, "replayed")


@pytest.mark.parametrize("age_days", [31, -31, "nan", "inf", "-inf"])
def test_a_request_signed_far_from_now_or_at_no_time_is_refused_and_changes_nothing(central, site, age_days):
    """A request older than the nonces are kept (so its nonce may be forgotten) is refused for its age."""
    import math
    import time

    from sync.central.storage.tables import NONCE_DAYS

    assert auth.MAX_SKEW_S < NONCE_DAYS * 86400
    kiosk, program, creds = site
    raw = push_body(program["program_id"], changes.changes_since(kiosk.db, program["program_id"], {})[:5])
    stamp = float(age_days) if isinstance(age_days, str) else time.time() - age_days * 86400
    assert isinstance(age_days, int) or not math.isfinite(stamp)
    headers = {"Content-Type": "application/json",
               **auth.sign(creds["device_id"], creds["secret"], "POST", "/api/sync/push", raw, now=stamp)}
    before = central.storage().change_count()
    response = requests.post(f"{central.url}/api/sync/push", data=raw, headers=headers, timeout=10)
    assert (response.status_code, response.json()["reason"]) == (401, "bad_timestamp")
    assert central.storage().change_count() == before


def test_a_clock_a_few_days_off_still_signs_in(central, site):
    import time

    kiosk, program, creds = site
    raw = push_body(program["program_id"], changes.changes_since(kiosk.db, program["program_id"], {})[:5])
    headers = {"Content-Type": "application/json", **auth.sign(creds["device_id"], creds["secret"], "POST",
                                                               "/api/sync/push", raw, now=time.time() - 3 * 86400)}
    assert requests.post(f"{central.url}/api/sync/push", data=raw, headers=headers, timeout=10).status_code == 200


def test_an_enrolment_code_works_once(tmp_path, central):
    storage = central.storage()
    code = storage.create_enrol_code()
    body = lambda device: dumps({"protocol": PROTOCOL, "code": code, "device_id": device})  # noqa: E731
    assert post(central.url, "enrol", body("a" * 36)).status_code == 200
    second = post(central.url, "enrol", body("b" * 36))
    assert (second.status_code, second.json()["reason"]) == (403, "bad_code")


def test_a_device_cannot_forge_another_devices_changes(tmp_path, central, site):
    honest, program, _ = site
    sync_once(honest.data_dir)
    forger = Kiosk(tmp_path / "forger")
    creds = enrol(forger, central.url, central.storage())
    stored = changes.changes_since(honest.db, program["program_id"], {}, limit=-1)
    scan = next(c for c in stored if c["entity"] == "scans")
    forged = copy.deepcopy(scan)
    forged["payload"]["result"] = "checked_out"
    response = post(central.url, "push", push_body(program["program_id"], [forged]), creds)
    assert (response.status_code, response.json()["reason"]) == (409, "origin_mismatch")
    relayed = post(central.url, "push", push_body(program["program_id"], [scan]), creds)
    assert relayed.status_code == 200  # relaying the very same change is fine (a resend is a no-op)
    as_server = copy.deepcopy(scan)
    server_id = central.storage().server_id
    as_server.update(origin=server_id, seq=1, hlc=scan["hlc"][:20] + server_id)
    response = post(central.url, "push", push_body(program["program_id"], [as_server]), creds)
    assert (response.status_code, response.json()["reason"]) == (409, "origin_mismatch")
    assert_invariant(central.storage(), [honest])


def test_every_api_error_has_the_one_json_shape(central):
    response = requests.post(f"{central.url}/api/sync/nowhere", data=b"{}", timeout=10)
    assert set(response.json()) == {"ok", "reason", "error"}
    assert response.json()["ok"] is False
    assert json.loads(post(central.url, "hello", b"[]").text)["reason"] == "unauthenticated"
