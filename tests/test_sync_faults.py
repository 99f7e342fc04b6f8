"""Fault tests with real processes on 127.0.0.1; each ends with the invariant: every scan made on
any device is on the central server exactly once, and attendance counts distinct pairs once."""

import random
import shutil
import signal

import pytest

from kiosk.store import changes
from sync.client import HttpTransport, sync_once
from sync.protocol import PROTOCOL, SyncError, split_batches
from sync.state import SyncState

from support import CentralServer, Kiosk, assert_invariant, enrol, kiosk_sync_process, wait_until

pytestmark = pytest.mark.slow


def _busy_kiosk(tmp_path, name="door-a", people=300) -> tuple[Kiosk, dict]:
    kiosk = Kiosk(tmp_path / name)
    program = kiosk.create_program()
    kiosk.scan_many(program, kiosk.register(program, people))
    return kiosk, program


def _log_has(server: CentralServer, text: str):
    return lambda: text in server.log_path.read_text(errors="replace")


def _transport(kiosk: Kiosk, server: CentralServer, **kw) -> HttpTransport:
    remote = SyncState(kiosk.data_dir).remote()
    return HttpTransport(server.url, remote["device_id"], remote["secret"], **kw)


@pytest.mark.parametrize("hook", ["SYNC_TEST_DELAY_BEFORE_COMMIT", "SYNC_TEST_DELAY_AFTER_COMMIT"])
def test_sync_process_killed_around_the_servers_commit_loses_and_doubles_nothing(tmp_path, central_server, hook):
    server = central_server(env={hook: "1.5", "SYNC_TEST_DELAY_FROM_PUSH": "2"})
    kiosk, _ = _busy_kiosk(tmp_path)
    enrol(kiosk, server.url, server.storage())
    client = kiosk_sync_process(kiosk)
    wait_until(_log_has(server, "push 2 sleeps"), message="the second push to reach the server")
    client.send_signal(signal.SIGKILL)
    client.wait()
    # the server finishes the dead client's request, committing it or not
    wait_until(_log_has(server, "push 2 finished"), message="the server to finish the dead client's push")
    total = len(changes.changes_since(kiosk.db, _program(kiosk), {}, -1))
    assert server.storage().change_count() in (500, total)  # the second batch is in whole or not at all
    server.restart(env={hook: "0"})
    sync_once(kiosk.data_dir)
    assert_invariant(server.storage(), [kiosk])
    server.kill()


def test_sync_process_killed_mid_stream_resumes_where_it_stopped(tmp_path, central_server):
    server = central_server(env={"SYNC_TEST_DELAY_BEFORE_COMMIT": "0.2"})
    kiosk, _ = _busy_kiosk(tmp_path, people=700)  # ~2,100 changes: 5 batches
    enrol(kiosk, server.url, server.storage())
    client = kiosk_sync_process(kiosk)
    for line in client.stdout:
        if line.startswith("pushed 1000"):
            break
    client.send_signal(signal.SIGKILL)
    client.wait()
    assert 1000 <= server.storage().change_count() < len(changes.changes_since(kiosk.db, _program(kiosk), {}, -1))
    server.restart(env={"SYNC_TEST_DELAY_BEFORE_COMMIT": "0"})
    summary = sync_once(kiosk.data_dir)
    assert summary["pushed"] < 2000  # it resumed: only what the server had not acknowledged
    assert_invariant(server.storage(), [kiosk])
    server.kill()


def _program(kiosk: Kiosk) -> str:
    return kiosk.db.execute("select id from programs").fetchone()[0]


def test_central_server_killed_and_restarted_mid_sync(tmp_path, central_server):
    server = central_server(env={"SYNC_TEST_DELAY_BEFORE_COMMIT": "1", "SYNC_TEST_DELAY_FROM_PUSH": "2"})
    kiosk, _ = _busy_kiosk(tmp_path)
    enrol(kiosk, server.url, server.storage())
    client = kiosk_sync_process(kiosk)
    wait_until(_log_has(server, "push 2 sleeps"), message="the second push")
    server.restart(env={"SYNC_TEST_DELAY_BEFORE_COMMIT": "0"})  # SIGKILL inside the open transaction
    output, _ = client.communicate(timeout=60)
    assert client.returncode == 0, output  # the client retried with backoff and finished
    assert_invariant(server.storage(), [kiosk])
    server.kill()


class DoubleDelivery(HttpTransport):
    """Delivers every request twice (a proxy that retries behind our back)."""

    def call(self, endpoint, body):
        first = super().call(endpoint, body)
        second = super().call(endpoint, body)
        assert second.get("vector", {}) == first.get("vector", {})
        return second


def test_every_batch_delivered_twice_counts_once(tmp_path, central_server):
    server = central_server()
    door_a, program = _busy_kiosk(tmp_path)
    door_b = Kiosk(tmp_path / "door-b")
    enrol(door_a, server.url, server.storage())
    enrol(door_b, server.url, server.storage(), programs=[program["program_id"]])
    sync_once(door_a.data_dir, transport=DoubleDelivery(server.url, *_creds(door_a)))
    sync_once(door_b.data_dir, transport=DoubleDelivery(server.url, *_creds(door_b)))
    door_b.scan_many(program, [r[0] for r in door_b.table("participants")][:50])
    sync_once(door_b.data_dir, transport=DoubleDelivery(server.url, *_creds(door_b)))
    sync_once(door_a.data_dir, transport=DoubleDelivery(server.url, *_creds(door_a)))
    assert door_a.domain() == door_b.domain()
    assert_invariant(server.storage(), [door_a, door_b])
    server.kill()


def _creds(kiosk: Kiosk):
    remote = SyncState(kiosk.data_dir).remote()
    return remote["device_id"], remote["secret"]


def test_batches_in_shuffled_order_are_refused_then_converge(tmp_path, central_server):
    server = central_server()
    kiosk, program = _busy_kiosk(tmp_path)
    enrol(kiosk, server.url, server.storage())
    transport = _transport(kiosk, server)
    pid = program["program_id"]
    waiting = list(split_batches(changes.changes_since(kiosk.db, pid, {}, limit=-1), max_changes=100))
    rng, gaps = random.Random(4), 0
    while waiting:
        rng.shuffle(waiting)
        batch = waiting.pop()
        try:
            transport.call("push", {"protocol": PROTOCOL, "program_id": pid, "changes": batch})
        except SyncError as exc:
            assert exc.reason == "seq_gap"
            gaps += 1
            waiting.append(batch)  # resent later
    assert gaps > 0
    assert server.storage().vector(pid) == changes.vector(kiosk.db, pid)
    assert_invariant(server.storage(), [kiosk])
    server.kill()


def test_every_fifth_request_failing_still_converges(tmp_path, central_server):
    server = central_server(env={"SYNC_TEST_FAIL_EVERY": "5"})
    door_a, program = _busy_kiosk(tmp_path)
    door_b = Kiosk(tmp_path / "door-b")
    enrol(door_a, server.url, server.storage())
    enrol(door_b, server.url, server.storage(), programs=[program["program_id"]])
    for _ in range(2):
        sync_once(door_a.data_dir)
        sync_once(door_b.data_dir)
        door_b.scan_many(program, [r[0] for r in door_b.table("participants")][:20])
    sync_once(door_b.data_dir)
    sync_once(door_a.data_dir)
    assert "test hook" not in server.log_path.read_text()  # failures were answered, not crashes
    assert door_a.domain() == door_b.domain()
    assert_invariant(server.storage(), [door_a, door_b])
    server.kill()


@pytest.mark.parametrize("skew_days", [2, -2])
def test_device_clock_skewed_two_days_is_recorded_and_its_scans_flagged(tmp_path, central_server, skew_days):
    server = central_server()
    door_a, program = _busy_kiosk(tmp_path, people=20)
    skewed = Kiosk(tmp_path / "skewed")
    enrol(door_a, server.url, server.storage())
    skewed_device = enrol(skewed, server.url, server.storage(), programs=[program["program_id"]])["device_id"]
    sync_once(skewed.data_dir, transport=_transport(skewed, server, clock_skew=skew_days * 86400))
    people = [r[0] for r in skewed.table("participants")]
    for person in people[:5]:
        skewed.scan(program, person, program["sessions"][0])
    sync_once(door_a.data_dir)
    summary = sync_once(skewed.data_dir, transport=_transport(skewed, server, clock_skew=skew_days * 86400))
    storage = server.storage()
    assert abs(summary["clock_offset_s"] + skew_days * 86400) < 60
    device = next(d for d in storage.device_list() if d["id"] == skewed_device)
    assert device["skewed"] and abs(device["clock_offset_s"] + skew_days * 86400) < 60
    flagged = {s["id"] for s in storage.flagged_scans(program["program_id"])}
    assert flagged == {s["id"] for s in skewed.made_scans}
    assert_invariant(storage, [door_a, skewed])
    server.kill()


@pytest.mark.parametrize("written_after_restore", [3, 40])
def test_kiosk_restored_from_an_older_backup_gets_a_new_id_and_loses_nothing(tmp_path, central_server, written_after_restore):
    server = central_server()
    kiosk, program = _busy_kiosk(tmp_path, people=10)
    enrol(kiosk, server.url, server.storage())
    sync_once(kiosk.data_dir)
    people = [r[0] for r in kiosk.table("participants")]
    kiosk.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    backup = tmp_path / "backup"
    shutil.copytree(kiosk.data_dir, backup)
    old_id = kiosk.device_id
    for person in people:                         # after the backup: 20 scans reach the server
        kiosk.scan(program, person, program["sessions"][0], result="already_checked_in")
        kiosk.scan(program, person, program["sessions"][1])
    sync_once(kiosk.data_dir)
    kiosk.close()
    shutil.rmtree(kiosk.data_dir)
    shutil.copytree(backup, kiosk.data_dir)       # the laptop is restored from the older backup
    kiosk.reopen()
    assert kiosk.device_id == old_id              # the whole folder came back: nothing looks wrong yet
    for i in range(written_after_restore):
        kiosk.scan(program, people[i % len(people)], program["sessions"][1])
    summary = sync_once(kiosk.data_dir)
    assert kiosk.device_id != old_id and summary["rotated"]
    sync_once(kiosk.data_dir)
    assert {s["id"] for s in kiosk.made_scans} <= {r[0] for r in kiosk.table("scans")}
    assert_invariant(server.storage(), [kiosk])
    assert changes.vector(kiosk.db, program["program_id"]) == server.storage().vector(program["program_id"])
    server.kill()

