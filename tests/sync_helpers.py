"""Helpers for the sync tests: kiosks made through kiosk.changes, real central servers in
subprocesses on 127.0.0.1, and the invariant every fault test ends with."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from kiosk import changes
from kiosk.clock import iso, new_id, now_utc
from kiosk.db import device_id, open_data_dir
from sync import client
from sync.central.storage import Storage

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kiosk:
    """A kiosk data folder with an open database; records every scan it makes."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = open_data_dir(self.data_dir)
        self.made_scans: list[dict] = []

    @property
    def device_id(self) -> str:
        return device_id(self.db)

    def reopen(self) -> None:
        self.db.close()
        self.db = open_data_dir(self.data_dir)

    def create_program(self, sessions: int = 2) -> dict:
        """A program with one site, one cohort and `sessions` sessions; returns their ids."""
        pid = new_id()
        changes.write(self.db, pid, "programs", pid, {"title": "อบรมผู้นำชุมชน", "signing_key": secrets.token_hex(32)})
        site = new_id()
        changes.write(self.db, pid, "sites", site, {"name": "ศาลาว่าการ", "kind": "venue"})
        cohort = new_id()
        changes.write(self.db, pid, "cohorts", cohort, {"number": 1, "site_id": site})
        days = []
        for day in range(sessions):
            session = new_id()
            changes.write(self.db, pid, "sessions", session, {"cohort_id": cohort, "day": f"2026-03-0{day + 1}"})
            days.append(session)
        return {"program_id": pid, "site_id": site, "cohort_id": cohort, "sessions": days}

    def register(self, program: dict, n: int = 1, prefix: str = "สมชาย") -> list[str]:
        ids = []
        for i in range(n):
            pid = new_id()
            changes.write(self.db, program["program_id"], "participants", pid,
                          {"cohort_id": program["cohort_id"], "first_name": f"{prefix}{i}", "last_name": "ใจดี"})
            ids.append(pid)
        return ids

    def edit(self, program: dict, participant: str, **fields) -> None:
        changes.write(self.db, program["program_id"], "participants", participant, fields)

    def scan(self, program: dict, participant: str, session: str, result: str = "checked_in") -> str:
        scan_id = new_id()
        fields = {"participant_id": participant, "session_id": session, "result": result, "direction": "in",
                  "device_id": self.device_id, "at": iso(now_utc()), "nonce": secrets.token_hex(8)}
        changes.write(self.db, program["program_id"], "scans", scan_id, fields)
        self.made_scans.append({"id": scan_id, **fields})
        return scan_id

    def scan_many(self, program: dict, participants: list[str], result: str = "checked_in") -> None:
        for person in participants:
            for session in program["sessions"]:
                self.scan(program, person, session, result)

    def table(self, name: str) -> list[tuple]:
        return self.db.execute(f"select * from {name} order by 1, 2").fetchall()

    def domain(self) -> dict[str, list[tuple]]:
        """Every domain table and attendance, for comparing replicas."""
        from kiosk.schema import ENTITIES
        return {name: self.table(name) for name in [*ENTITIES, "attendance"]}

    def close(self) -> None:
        self.db.close()


RUNNING: list = []


@pytest.fixture
def reap_servers():
    """Kills every server a test started, even when the test fails half-way."""
    yield
    while RUNNING:
        RUNNING.pop().kill()


class CentralServer:
    """`kiosk-central serve` in a subprocess on a free port; kill() is SIGKILL for real."""

    def __init__(self, data_dir: Path, url: str | None = None, env: dict | None = None, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.db_url = url or f"sqlite:///{self.data_dir / 'central.db'}"
        self.port = port or free_port()
        self.extra_env = env or {}
        self.proc = None
        self.log = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict | None = None) -> "CentralServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **self.extra_env, **(env or {}), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.central", "--data", str(self.data_dir), "--db", self.db_url,
             "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=full_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        RUNNING.append(self)
        wait_http(self.url, self.proc)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self, env: dict | None = None) -> None:
        self.kill()
        self.start(env)

    def storage(self) -> Storage:
        return Storage(self.db_url)


def wait_http(url: str, proc=None, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            requests.post(url + "/api/sync/hello", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def enrol(kiosk: Kiosk, server_url: str, storage: Storage, programs=None) -> dict:
    code = storage.create_enrol_code("test kiosk", programs)
    return client.enrol(kiosk.data_dir, server_url, code)


def kiosk_sync_process(kiosk: Kiosk, url: str | None = None, env: dict | None = None) -> subprocess.Popen:
    """`python -m sync --data DIR sync` as a subprocess, printing progress lines."""
    args = [sys.executable, "-m", "sync", "--data", str(kiosk.data_dir), "sync"]
    if url:
        args += ["--peer", url]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def assert_invariant(storage: Storage, kiosks: list[Kiosk]) -> None:
    """Every scan made on any kiosk is on the central server exactly once, and attendance counts
    equal the distinct (participant, session) pairs with a successful check-in."""
    made = [s for k in kiosks for s in k.made_scans]
    central = storage.scan_ids()
    assert len(central) == len(set(central)), "a scan is stored twice on the central server"
    assert set(central) == {s["id"] for s in made}, (
        f"central has {len(set(central))} scans, kiosks made {len(made)}")
    expected = {(s["participant_id"], s["session_id"]) for s in made if s["result"] == "checked_in"}
    assert storage.attendance_count() == len(expected)


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args: list[str], **kw):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1; yields its base URL (no database name)."""
    if not (PG_BIN / "initdb").exists():
        message = f"PostgreSQL 15 is not installed ({PG_BIN / 'initdb'} missing)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " - CI must run the PostgreSQL tests")
        pytest.skip(message)
    import shutil
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C.UTF-8"])
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def new_pg_database(cluster_url: str) -> str:
    """A fresh, empty database in the cluster; its SQLAlchemy URL."""
    import psycopg
    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(cluster_url.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f"create database {name}")
    return f"{cluster_url}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def central_db_url(request, tmp_path):
    """The central server's database URL: SQLite, then a real PostgreSQL 15."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    return new_pg_database(request.getfixturevalue("postgres_cluster"))


@pytest.fixture
def central(tmp_path, central_db_url):
    """A running central server (subprocess) on SQLite or PostgreSQL."""
    server = CentralServer(tmp_path / "central", url=central_db_url).start()
    yield server
    server.kill()
