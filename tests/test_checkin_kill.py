"""Fault test: SIGKILL the real server while check-ins stream in; nothing answered 2xx is lost.

Clients keep a nonce per person and, after the restart, retry what got no answer with the same
nonce: each person ends with exactly one checked_in scan and one attendance.
"""

import threading
import uuid

import pytest
import requests

from kiosk.trust import accounts as auth

pytestmark = pytest.mark.slow

CLIENTS = 4
KILL_AFTER = 60


def test_kill_9_mid_stream_loses_no_acknowledged_check_in(db, make_event, kiosk_server):
    event = make_event(open_now=True, extra_people=400)
    auth.add_user(db, "chief", "coordinator", "password123")
    auth.add_user(db, "scanner", "staff", "password123")
    headers = {"Authorization": "Bearer " + auth.issue_token(db, "scanner")}
    people = event["people"]
    nonces = {p["id"]: uuid.uuid4().hex for p in people}
    acknowledged, unanswered = {}, []
    lock = threading.Lock()
    enough = threading.Event()

    server = kiosk_server()

    def stream(share):
        with requests.Session() as http:
            for person in share:
                body = {"code": person["code"], "nonce": nonces[person["id"]]}
                try:
                    response = http.post(server.url + "/api/checkins", json=body, headers=headers, timeout=5)
                except requests.RequestException:
                    with lock:
                        unanswered.append(person)
                    continue
                with lock:
                    if 200 <= response.status_code < 300:
                        acknowledged[person["id"]] = response.json()
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()
                    else:
                        unanswered.append(person)

    threads = [threading.Thread(target=stream, args=(people[i::CLIENTS],)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    assert enough.wait(60), server.log()
    server.kill()
    for t in threads:
        t.join(120)
    assert acknowledged and unanswered, "the kill must land mid-stream"
    assert all(a["status"] == "checked_in" for a in acknowledged.values())

    server.start()
    try:
        stored = {r[0] for r in db.execute("select participant_id from attendance").fetchall()}
        assert set(acknowledged) <= stored  # every 2xx answer survived the kill
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"

        with requests.Session() as http:  # the clients' retries, same nonces
            for person in unanswered:
                body = {"code": person["code"], "nonce": nonces[person["id"]]}
                response = http.post(server.url + "/api/checkins", json=body, headers=headers, timeout=10)
                assert response.status_code == 200 and response.json()["status"] == "checked_in", response.text
    finally:
        server.stop()
    counts = db.execute("select count(*), count(distinct participant_id) from attendance").fetchone()
    assert counts == (len(people), len(people))
    ins = db.execute("select count(*) from scans where result = 'checked_in'").fetchone()[0]
    assert ins == len(people)


def test_kill_9_mid_burst_of_scans_reissues_and_a_backup_starts_cleanly_with_every_acknowledged_write(
        db, data_dir, make_event, kiosk_server):
    from kiosk.ops import backup

    people = make_event(open_now=True, extra_people=300)["people"]
    auth.add_user(db, "scanner", "staff", "password123")
    headers = {"Authorization": "Bearer " + auth.issue_token(db, "scanner")}
    scanned, reissued, lock, enough = set(), {}, threading.Lock(), threading.Event()
    server = kiosk_server()

    def scans(share):
        with requests.Session() as http:
            for person in share:
                try:
                    response = http.post(server.url + "/api/checkins", json={"code": person["code"]},
                                         headers=headers, timeout=5)
                except requests.RequestException:
                    return
                if response.ok:
                    with lock:
                        scanned.add(response.json()["scan_id"])
                        if len(scanned) >= KILL_AFTER:
                            enough.set()

    def reissues(share):
        with requests.Session() as http:
            for person in share:
                try:
                    response = http.post(server.url + f"/api/participants/{person['id']}/badge",
                                         headers=headers, timeout=5)
                except requests.RequestException:
                    return
                if response.ok:
                    with lock:
                        reissued[person["id"]] = response.json()["code"]

    def backups():
        while not enough.is_set():
            try:
                backup.take_backup(data_dir)
            except Exception:  # noqa: BLE001 - the kill may land mid-copy; what matters is after
                return

    half = len(people) // 2
    workers = [threading.Thread(target=scans, args=(people[i:half:3],)) for i in range(3)]
    workers += [threading.Thread(target=reissues, args=(people[half:],)), threading.Thread(target=backups)]
    for t in workers:
        t.start()
    assert enough.wait(60), server.log()
    server.kill()
    for t in workers:
        t.join(120)
    assert scanned and reissued, "the kill must land mid-burst"

    server.start()  # starts cleanly on the killed database
    try:
        assert requests.get(server.url + "/healthz", timeout=10).json()["checks"]["database"] == "ok"
    finally:
        server.stop()
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in db.execute("select id from scans where result = 'checked_in'").fetchall()}
    assert scanned <= stored
    for participant_id, code in reissued.items():
        active = db.execute("select code from badges where participant_id = ? and revoked_at is null",
                            [participant_id]).fetchall()
        assert active == [(code,)]  # the acknowledged new badge is the one that works
    for path in backup.backups(data_dir / backup.BACKUP_DIR):
        backup.verify(path)  # every finished backup is whole; a copy cut short has no final name
