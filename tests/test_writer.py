"""The door's writer process (kiosk.writer): scans committed in a process beside the server, with
the same answers, the same records and the same lock as the writer thread; it ends with the
server, and the door goes on without it."""

import json
import os
import pickle
import signal
import socket
import threading
from multiprocessing import connection
from pathlib import Path

import pytest
import requests

from kiosk import auth, checkin, writer
from kiosk.checkin import REASON_NOT_CHECKED_IN, CheckinError, check_in
from kiosk.clock import now_utc
from kiosk.db import GroupCommitter, Job, WriteLock, database_path, device_id
from kiosk.errors import KioskError
from kiosk.ops import disk, log
from support import child_pids, cpu_seconds, proc_stat, wait_until

pytestmark = pytest.mark.skipif(not writer.supported(), reason="the writer process runs on Linux only")


@pytest.fixture
def writer_process(db):
    """The door's writer process for the test's database, taking the door's jobs once it answers."""
    process = writer.WriterProcess(database_path(db)).start()
    wait_until(lambda: GroupCommitter.processes.get(process.path) is process, 60, "the writer process to answer")
    yield process
    process.stop()


def ended(pid: int) -> bool:
    """Gone, or a zombie no one has reaped yet (in a container, PID 1 may never) whose threads
    have all exited: the main thread turns zombie first, and until the last one is gone the
    process's sockets are open, so a line sent to it then is taken and lost."""
    try:
        return proc_stat(pid)[0] in ("Z", "X") and len(list(Path(f"/proc/{pid}/task").iterdir())) == 1
    except (FileNotFoundError, PermissionError):
        return True


def writer_children(pid: int) -> list[int]:
    """The spawned children of a server that are writer processes (multiprocessing's resource
    tracker is a child too)."""
    return [child for child in child_pids(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def test_refusal_pickles_with_its_reason_and_context():
    error = CheckinError(REASON_NOT_CHECKED_IN, program_id="p1", participant={"id": "x"}, replayed=True)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.reason, str(again), again.program_id, again.participant, again.replayed) == (
        CheckinError, REASON_NOT_CHECKED_IN, str(error), "p1", {"id": "x"}, True)
    assert again.status == error.status


def test_scans_through_the_writer_process_answer_and_store_as_the_writer_thread_does(db, make_event, writer_process):
    event = make_event(open_now=True, extra_people=60)
    people = event["people"]
    before = cpu_seconds(writer_process.pid)
    answers, errors = {}, []

    def scan(share):
        for person in share:
            try:
                answers[person["id"]] = check_in(db, person["code"], device="tablet-1", nonce=person["id"])
            except Exception as exc:  # compared below, in the test's thread
                errors.append(exc)

    threads = [threading.Thread(target=scan, args=(people[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert {a.status for a in answers.values()} == {"checked_in"} and len(answers) == len(people)
    assert cpu_seconds(writer_process.pid) > before  # the process did the writes
    assert db.execute("select count(*), count(distinct participant_id) from attendance").fetchone() == (len(people),) * 2
    # The same nonce again is the first answer, replayed, and stores nothing.
    again = check_in(db, people[0]["code"], device="tablet-1", nonce=people[0]["id"])
    assert (again.status, again.replayed, again.scan_id) == ("checked_in", True, answers[people[0]["id"]].scan_id)
    assert db.execute("select count(*) from scans").fetchone()[0] == len(people)


def test_a_refusal_decided_in_the_writer_process_is_raised_with_its_reason_and_stored(db, open_event, writer_process):
    person = open_event["people"][0]
    with pytest.raises(CheckinError) as refused:
        check_in(db, person["code"], direction="out")
    assert refused.value.reason == REASON_NOT_CHECKED_IN
    assert refused.value.participant["id"] == person["id"]
    assert db.execute("select result from scans").fetchall() == [(REASON_NOT_CHECKED_IN,)]


def test_a_batch_of_the_writer_process_asks_for_disk_room_once_and_a_full_disk_refuses_each_scan(
        db, open_event, monkeypatch):
    """The server's threads no longer ask (a let-go of the GIL each); the process asks once a batch."""
    asked = []
    free = [disk.REFUSE_BYTES - 1]
    monkeypatch.setattr(disk, "free_bytes", lambda path: asked.append(path) or free[0])
    at = now_utc()
    jobs = [(f"client-{i}", Job(checkin._scan, (person["code"], None, at, "tablet-1", "staff", f"n{i}", "in", None)))
            for i, person in enumerate(open_event["people"])]
    refused = writer._commit(db, jobs)
    assert [client for client, _ in refused] == [client for client, _ in jobs]
    assert {(ok, type(error), error.reason) for _, (ok, error) in refused} == {(False, KioskError, "disk_full")}
    assert db.execute("select count(*) from scans").fetchone()[0] == 0
    free[0], asked[:] = disk.REFUSE_BYTES, []
    stored = writer._commit(db, jobs)
    assert {(ok, result.status) for _, (ok, result) in stored} == {(True, "checked_in")}
    assert len(asked) == 1 and db.execute("select count(*) from attendance").fetchone()[0] == len(jobs)


def test_a_code_that_is_no_text_is_refused_and_stored_through_the_writer_process(db, open_event, writer_process):
    """A JSON list 900 deep would not pickle for the process: what is not text crosses as no code."""
    deep = "x"
    for _ in range(900):
        deep = [deep]
    for code in (deep, {"$ne": 1}, "A" * 20_000):
        with pytest.raises(CheckinError) as refused:
            check_in(db, code, device="tablet-1")
        assert refused.value.reason == "invalid_code"
    stored = db.execute("select result, code from scans order by at").fetchall()
    assert stored == [("invalid_code", None), ("invalid_code", None), ("invalid_code", "A" * checkin.STORED_CODE_LEN)]


def test_the_write_lock_is_one_across_the_two_processes(db, writer_process):
    """While the writer process is in a batch, this process cannot take the lock, and the other way round."""
    lock = GroupCommitter.write_lock(db)
    other = WriteLock(lock.path.removesuffix("-lock"))  # a second holder of the file, as the process is
    other.share()
    with other:
        assert lock.acquire(blocking=False) is False
    assert lock.acquire(blocking=False) is True
    try:
        assert other.acquire(blocking=False) is False
    finally:
        lock.release()


def test_a_local_caller_without_the_key_is_refused_and_the_process_goes_on(db, open_event, writer_process):
    """Any local process can reach an abstract socket: only the key lets it send a job (a pickle)."""
    with pytest.raises(connection.AuthenticationError):
        connection.Client(writer_process.address, family="AF_UNIX", authkey=b"guessed" * 4)
    with socket.socket(socket.AF_UNIX) as raw:  # no handshake at all: a pickle where the challenge goes
        raw.connect(writer_process.address)
        raw.sendall(b"\x00\x00\x00\x10" + pickle.dumps(("os.system", "true"))[:16])
    answered = []  # in a thread: a process that stopped accepting would leave the handshake hanging
    asking = threading.Thread(target=lambda: answered.append(writer_process.run(Job(device_id))), daemon=True)
    asking.start()
    asking.join(20)
    assert answered == [(True, device_id(db))]  # answered by the process itself
    assert check_in(db, open_event["people"][0]["code"]).status == "checked_in"
    assert GroupCommitter.processes.get(writer_process.path) is writer_process


def test_the_door_goes_on_when_the_writer_process_dies(db, open_event, writer_process):
    people = open_event["people"]
    assert check_in(db, people[0]["code"]).status == "checked_in"
    os.kill(writer_process.pid, signal.SIGKILL)
    wait_until(lambda: ended(writer_process.pid), 10, "the writer process to die")
    assert check_in(db, people[1]["code"]).status == "checked_in"  # the writer thread took over
    assert GroupCommitter.processes.get(writer_process.path) is None
    assert check_in(db, people[2]["code"]).status == "checked_in"
    assert db.execute("select count(*) from attendance").fetchone()[0] == 3


def test_a_dead_writer_process_is_started_again_waiting_longer_each_time_it_dies_young(db, make_event, monkeypatch):
    monkeypatch.setattr(writer.WriterProcess, "RESTART_SECONDS", (0.2, 300.0))
    people = make_event(open_now=True, extra_people=60)["people"]
    first = writer.WriterProcess(database_path(db), restart=True).start()
    try:
        wait_until(lambda: GroupCommitter.processes.get(first.path) is first, 60, "the writer process to answer")
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: ended(first.pid), 10, "the writer process to die")
        assert check_in(db, people[0]["code"]).status == "checked_in"  # the writer thread, meanwhile
        assert first.successor.interval == 0.2
        wait_until(lambda: GroupCommitter.processes.get(first.path) not in (None, first), 60, "a new writer process")
        second = GroupCommitter.processes[first.path]
        assert second is first.successor and second.pid != first.pid
        before = cpu_seconds(second.pid)
        assert {check_in(db, person["code"]).status for person in people[1:]} == {"checked_in"}
        assert cpu_seconds(second.pid) > before  # the new process did the writes
        os.kill(second.pid, signal.SIGKILL)  # it dies young too: the next wait is twice as long
        wait_until(lambda: ended(second.pid), 10, "the new writer process to die")
        assert check_in(db, people[0]["code"]).status == "already_checked_in"
        waiting = second.successor
        assert waiting.interval == 0.4
    finally:
        first.stop()  # and the process (or the wait) that took its place
    assert GroupCommitter.processes.get(first.path) is None and second.successor is None
    waiting.join(5)
    assert not waiting.is_alive() and ended(second.pid)
    assert db.execute("select count(*), count(distinct participant_id) from attendance").fetchone() == (len(people),) * 2


def test_a_stopped_writer_process_is_not_started_again(db, open_event, monkeypatch):
    monkeypatch.setattr(writer.WriterProcess, "RESTART_SECONDS", (0.2, 300.0))
    process = writer.WriterProcess(database_path(db), restart=True).start()
    wait_until(lambda: GroupCommitter.processes.get(process.path) is process, 60, "the writer process to answer")
    process.stop()
    assert GroupCommitter.processes.get(process.path) is None and process.successor is None
    assert check_in(db, open_event["people"][0]["code"]).status == "checked_in"
    threading.Event().wait(0.5)
    assert GroupCommitter.processes.get(process.path) is None


def test_served_kiosk_commits_the_door_in_its_writer_process_which_ends_with_it(db, make_event, kiosk_server):
    event = make_event(open_now=True, extra_people=120)
    auth.add_user(db, "scanner", "staff", "password123")
    headers = {"Authorization": "Bearer " + auth.issue_token(db, "scanner")}
    server = kiosk_server()
    wait_until(lambda: "writer process is ready" in "".join(
        f.read_text() for f in (Path(server.data_dir) / log.LOG_DIR).glob("kiosk.log*")), 60, "the writer process to answer")
    [child] = writer_children(server.pid)
    before = cpu_seconds(child)
    statuses = []

    def stream(share):
        with requests.Session() as http:
            for person in share:
                response = http.post(server.url + "/api/checkins", json={"code": person["code"]}, headers=headers, timeout=10)
                statuses.append((response.status_code, response.json().get("status")))

    threads = [threading.Thread(target=stream, args=(event["people"][i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [(200, "checked_in")] * len(event["people"])
    assert cpu_seconds(child) - before > 0.01, "the writer process did the writes"
    assert db.execute("select count(distinct participant_id) from attendance").fetchone()[0] == len(event["people"])
    server.kill()  # SIGKILL: the process learns it only from its pipe
    wait_until(lambda: ended(child), 10, "the writer process to end with the server")


def test_a_served_kiosk_starts_a_new_writer_process_when_its_own_dies(db, open_event, kiosk_server):
    auth.add_user(db, "scanner", "staff", "password123")
    headers = {"Authorization": "Bearer " + auth.issue_token(db, "scanner")}
    server = kiosk_server()
    wait_until(lambda: _log_text(server.data_dir).count('"writes_log": true') == 1, 60, "the writer process to answer")
    [child] = writer_children(server.pid)
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: ended(child), 10, "the writer process to die")
    people = open_event["people"]
    scan = lambda person: requests.post(server.url + "/api/checkins", json={"code": person["code"]}, headers=headers,
                                        timeout=10).json()["status"]
    assert scan(people[0]) == "checked_in"  # the writer thread, which finds the process gone
    wait_until(lambda: _log_text(server.data_dir).count('"writes_log": true') == 2, 60, "a new writer process")
    [new] = [pid for pid in writer_children(server.pid) if not ended(pid)]
    assert new != child and '"restart_in_seconds": 1.0' in _log_text(server.data_dir)
    assert [scan(person) for person in people[1:]] == ["checked_in"] * (len(people) - 1)
    assert requests.get(server.url + "/api/after-the-restart", timeout=10).status_code == 404
    wait_until(lambda: "/api/after-the-restart" in _log_text(server.data_dir), 10, "the request's line")
    assert _holds_open(new, Path(server.data_dir) / log.LOG_DIR / log.LOG_FILE)  # the new process writes the log
    server.stop()
    wait_until(lambda: ended(new), 10, "the new writer process to end with the server")


def _log_text(data_dir) -> str:
    return "".join(f.read_text(encoding="utf-8") for f in sorted((Path(data_dir) / log.LOG_DIR).glob("kiosk.log*")))


def _holds_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    return any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir() if fd.is_symlink())


def test_a_served_kiosks_log_is_written_by_its_writer_process_and_by_the_server_once_it_is_gone(kiosk_server):
    server = kiosk_server()
    log_file = Path(server.data_dir) / log.LOG_DIR / log.LOG_FILE
    wait_until(lambda: '"writes_log": true' in _log_text(server.data_dir), 60, "the writer process to take the log")
    [child] = writer_children(server.pid)
    assert requests.get(server.url + "/api/ping/0891234567").status_code == 404  # a path that holds a phone
    wait_until(lambda: "/api/ping/[number]" in _log_text(server.data_dir), 10, "the request's line")
    assert _holds_open(child, log_file) and not _holds_open(server.pid, log_file)
    assert "0891234567" not in _log_text(server.data_dir)

    os.kill(child, signal.SIGKILL)  # the server's log thread finds it gone and writes the lines itself
    wait_until(lambda: ended(child), 10, "the writer process to end")
    for i in range(3):
        assert requests.get(server.url + f"/api/after-the-writer-{i}").status_code == 404
    wait_until(lambda: "/api/after-the-writer-2" in _log_text(server.data_dir), 10, "the server to write its lines")
    assert _holds_open(server.pid, log_file)
    server.stop()
    lines = [json.loads(line) for line in _log_text(server.data_dir).splitlines()]
    assert [line["path"] for line in lines if line.get("act") == "request" and "after" in line["path"]] == [
        f"/api/after-the-writer-{i}" for i in range(3)]


def test_the_last_lines_before_a_stop_are_in_the_file_when_the_server_has_ended(kiosk_server):
    server = kiosk_server()
    wait_until(lambda: '"writes_log": true' in _log_text(server.data_dir), 60, "the writer process to take the log")
    with requests.Session() as http:
        for i in range(200):
            http.get(server.url + f"/api/last-{i}")
    server.stop()  # SIGTERM: the log thread hands the process its last batch and waits until it is written
    paths = [json.loads(line).get("path") for line in _log_text(server.data_dir).splitlines()]
    assert [p for p in paths if p and p.startswith("/api/last-")] == [f"/api/last-{i}" for i in range(200)]


def test_forwarded_batches_are_written_rotated_and_answered_once_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "MAX_BYTES", 4000)
    server_end, process_end = connection.Pipe()
    path = tmp_path / "kiosk.log"
    writing = threading.Thread(target=log.write_forwarded, args=(path, process_end))
    writing.start()
    made = log.LogFile(tmp_path / "elsewhere.log")
    items = [(1796100000.0 + i, "GET", f"/p/{i}/0891234567", 200, 0.5, None) for i in range(60)]
    items.append(log._Line("kiosk.check_in", "check-in", {"act": "check_in", "result": "checked_in"}))
    items.append('{"already": "a line"}')
    for start in range(0, len(items), 20):
        server_end.send_bytes(pickle.dumps(items[start:start + 20]))
    server_end.send_bytes(pickle.dumps(None))
    assert server_end.poll(10) and server_end.recv_bytes() == b"written"
    writing.join(10)
    files = sorted(tmp_path.glob("kiosk.log*"), key=lambda f: -int(f.suffix[1:]) if f.suffix[1:].isdigit() else 0)
    assert len(files) > 1, "rotated at MAX_BYTES"
    written = "".join(f.read_text(encoding="utf-8") for f in files).splitlines()
    assert written == [made.format(item) if not isinstance(item, str) else item for item in items]
    assert "0891234567" not in "".join(written)
