"""Two central processes on one PostgreSQL database: kiosks pushing to both at once lose and
double nothing, a request replayed to the other process is refused, and a login, a logout and
the login back-off hold across them."""

import json
import re
import threading

import pytest
import requests

from sync import auth
from sync.protocol import PROTOCOL

from support import CentralServer, Kiosk, assert_invariant, enrol, kiosk_sync_process, sync_post

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def two_servers(postgres_cluster, tmp_path):
    url = postgres_cluster.new_database()
    servers = [CentralServer(tmp_path / f"central-{n}", url=url) for n in "ab"]
    # both start at once on an empty database: one brings the schema up, the other waits for it
    threads = [threading.Thread(target=s.start) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    yield servers, servers[0].storage()
    for server in servers:
        server.kill()


def _sync_all(kiosks, expect="") -> None:
    running = [kiosk_sync_process(k) for k in kiosks]
    for process in running:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, out
        assert expect in out


def test_kiosks_pushing_to_two_processes_at_once_store_every_change_once(two_servers, tmp_path):
    (a, b), storage = two_servers
    kiosks = [Kiosk(tmp_path / f"kiosk-{n}") for n in range(4)]
    program = kiosks[0].create_program(sessions=2)
    people = kiosks[0].register(program, 30)
    enrol(kiosks[0], a.url, storage)
    _sync_all(kiosks[:1])
    for n, kiosk in enumerate(kiosks[1:], 1):  # the others get the program from either process
        enrol(kiosk, (a, b)[n % 2].url, storage, programs=[program["program_id"]])
    _sync_all(kiosks[1:])
    for n, kiosk in enumerate(kiosks):  # every kiosk scans the same people, and adds its own walk-ins
        kiosk.scan_many(program, people[n::2] if n else people)
        kiosk.scan_many(program, kiosk.register(program, 20, prefix=f"เดินเข้า{n}-"))
    _sync_all(kiosks)  # all four push at once, two to each process
    _sync_all(kiosks)  # and again: a resend changes nothing
    assert_invariant(storage, kiosks)
    made = {row for kiosk in kiosks for row in kiosk.db.execute("select program_id, origin, seq from changes")}
    with storage.engine.connect() as conn:
        stored = conn.exec_driver_sql("select program_id, origin, seq from changes").all()
    assert len(stored) == len(set(stored)) and set(stored) == made
    with storage.engine.connect() as conn:
        came = conn.exec_driver_sql("select count(*) from participants where attended > 0").scalar()
        counted = conn.exec_driver_sql("select sum(registered), sum(attended) from area_counts").one()
    assert counted == (30 + 4 * 20, came) == (110, 110)
    for kiosk in kiosks:
        kiosk.close()


def test_a_push_replayed_to_the_other_process_is_refused(two_servers, tmp_path):
    (a, b), storage = two_servers
    kiosk = Kiosk(tmp_path / "kiosk")
    creds = enrol(kiosk, a.url, storage)
    body = json.dumps({"protocol": PROTOCOL, "programs": {}}).encode()

    headers = {"Content-Type": "application/json",
               **auth.sign(creds["device_id"], creds["secret"], "POST", "/api/sync/hello", body)}
    first = requests.post(a.url + "/api/sync/hello", data=body, headers=headers, timeout=30)
    again = requests.post(b.url + "/api/sync/hello", data=body, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    assert again.status_code == 401 and again.json()["reason"] == "replayed", again.text
    assert sync_post(b.url, "hello", body, creds).status_code == 200  # a fresh nonce is welcome on either


def _token(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', session.get(url).text).group(1)


def test_a_login_a_logout_and_the_back_off_hold_on_both_processes(two_servers):
    (a, b), storage = two_servers
    storage.add_user("office", "password123")
    browser = requests.Session()
    done = browser.post(a.url + "/login", data={"username": "office", "password": "password123",
                                                 "csrf_token": _token(browser, a.url + "/login")}, allow_redirects=False)
    assert done.status_code == 302
    assert browser.get(b.url + "/devices", allow_redirects=False).status_code == 200  # the other knows the cookie
    browser.post(b.url + "/logout", data={"csrf_token": _token(browser, b.url + "/devices")})
    assert browser.get(a.url + "/devices", allow_redirects=False).status_code == 302  # ended on both
    guesser = requests.Session()
    for n in range(5):
        server = (a, b)[n % 2]
        wrong = guesser.post(server.url + "/login", data={"username": "office", "password": f"guess{n}",
                                                          "csrf_token": _token(guesser, server.url + "/login")})
        assert wrong.status_code == 401
    held = guesser.post(b.url + "/login", data={"username": "office", "password": "password123",
                                                "csrf_token": _token(guesser, b.url + "/login")})
    assert held.status_code == 429  # five wrong on two processes: the back-off is one
