"""Plain helpers for the tests and the benchmarks (fixtures live in conftest.py).

- `wait_until` is the one way to wait for something; `free_port` the one way to pick a port.
- `KioskServer`, `CentralServer`, `PostgresCluster`: real processes on 127.0.0.1.
- `build_event`: the one event builder, through the domain services (`kiosk.program.events`, `kiosk.people.participants`).
- `Kiosk`: a kiosk data folder for the sync tests, with the scans it made; `assert_invariant`.

The benchmarks import this module too (scripts/bench/ puts tests/ on sys.path).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import requests

from kiosk.clock import LOCAL_ZONE, format_hlc, iso, local_day, new_id, now_utc
from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.store import changes
from kiosk.store.db import device_id, open_data_dir, transaction
from kiosk.trust import keys

ROOT = Path(__file__).resolve().parent.parent


# --- waiting and ports --------------------------------------------------------------------------

def wait_until(predicate, timeout: float = 20, message: str = "the condition", interval: float = 0.05):
    """Calls `predicate` until it returns something true, and returns that; AssertionError after
    `timeout` seconds, naming `message` (what was awaited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (Linux): [0] is the state, [11] and
    [12] user and system CPU in clock ticks."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live children of a process, from every one of its threads."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(method: str, url: str, process: subprocess.Popen | None = None, log=lambda: "", **kwargs):
    """A predicate for `wait_until`: the HTTP request gets an answer, of any status (while `process`,
    if given, is alive)."""
    def check() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log()}")
        try:
            requests.request(method, url, timeout=2, **kwargs)
            return True
        except requests.RequestException:
            return False
    return check


# --- servers ------------------------------------------------------------------------------------

class _Process:
    """A server child process on 127.0.0.1 whose output goes to `server.log` in its data folder."""

    ready_path = "/"
    ready_method = "GET"

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self, env: dict | None = None) -> dict:
        return {**os.environ, **self.extra_env, **(env or {}), "PYTHONPATH": str(ROOT)}

    def start(self, env: dict | None = None, timeout: float = 30):
        """Starts the server and returns it once it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.environment(env),
                                            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(answers(self.ready_method, self.url + self.ready_path, self.process, self.log),
                       timeout, f"{self.url} to answer")
        except AssertionError:
            self.stop()
            raise AssertionError(f"{self.url} did not answer within {timeout}s:\n{self.log()}") from None
        return self

    def kill(self) -> None:
        """SIGKILL (TerminateProcess on Windows): the process gets no chance to clean up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """A polite stop (SIGTERM), then SIGKILL if it lingers."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, env: dict | None = None) -> None:
        self.kill()
        self.start(env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class KioskServer(_Process):
    """`kiosk serve` (waitress) with KIOSK_DATA set; ready once /api/ping answers.

        with KioskServer(data_dir) as server:
            requests.get(server.url + "/api/ping")
            server.kill()        # SIGKILL: no clean-up of any kind
            server.start()       # same data folder, same port
    """

    ready_path = "/api/ping"

    def __init__(self, data_dir, port: int | None = None, threads: int = 8, env: dict | None = None):
        super().__init__(data_dir, port, env)
        self.threads = threads

    def environment(self, env: dict | None = None) -> dict:
        return {**super().environment(env), "KIOSK_DATA": str(self.data_dir)}

    def command(self) -> list[str]:
        return [sys.executable, "-c", "from kiosk.cli.main import main; main()", "--data", str(self.data_dir),
                "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(self.threads)]


class CentralServer(_Process):
    """`kiosk-central serve` on SQLite (default) or the database at `url`; `kill()` is a real SIGKILL."""

    ready_path = "/api/sync/hello"
    ready_method = "POST"

    def __init__(self, data_dir, url: str | None = None, env: dict | None = None, port: int | None = None,
                 threads: int | None = None):
        super().__init__(data_dir, port, env)
        self.db_url = url or f"sqlite:///{self.data_dir / 'central.db'}"
        self.threads = threads

    def command(self) -> list[str]:
        threads = ["--threads", str(self.threads)] if self.threads else []
        faults = any(name.startswith("SYNC_TEST_") for name in self.extra_env)  # tests/faulty_central.py
        program = [str(ROOT / "tests" / "faulty_central.py")] if faults else ["-m", "sync.central"]
        return [sys.executable, *program, "--data", str(self.data_dir), "--db", self.db_url,
                "serve", "--host", "127.0.0.1", "--port", str(self.port), *threads]

    def storage(self):
        from sync.central.storage import Storage
        return Storage(self.db_url)


class PeerServer(_Process):
    """`python -m sync peer-serve`: only a kiosk's sync endpoints, for paired laptops."""

    ready_path = "/api/sync/hello"
    ready_method = "POST"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sync", "--data", str(self.data_dir), "peer-serve",
                "--host", "127.0.0.1", "--port", str(self.port)]


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1, run as the `postgres` user when root."""

    def __init__(self, max_connections: int = 200, fsync: bool = False):
        self.base = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        self.port = free_port()
        self.options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
                        f" -c max_connections={max_connections}" + ("" if fsync else " -c fsync=off"))

    @staticmethod
    def installed() -> bool:
        return (PG_BIN / "initdb").exists()

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster, without a database name."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def _run(self, args: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + args, check=True, capture_output=True, text=True)

    def start(self) -> "PostgresCluster":
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        data = self.base / "data"
        self._run([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                   "--locale=C.UTF-8"])
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", self.options, "-l", str(self.base / "log"),
                   "-w", "start"])
        return self

    def stop(self) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database in the cluster; its SQLAlchemy URL."""
        import psycopg
        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f"create database {name}")
        return f"{self.url}/{name}"


def log_in(page, server, username: str = "door", password: str = "password123", next_path: str = "/scan",
           lang: str | None = None) -> None:
    """Logs in through the real login form of `server` in a Playwright page; waits to land on `next_path`."""
    page.goto(f"{server.url}/login?next={next_path}" + (f"&lang={lang}" if lang else ""))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_url(re.compile(re.escape(next_path) + "$"))


def tablet_client(app, db, cohort_id: str, label: str = "A"):
    """A test client that is a registration tablet paired for `cohort_id` (its row in `.tablet`)."""
    from kiosk.people import tablets

    tablet, token = tablets.claim_pairing(db, tablets.pair_tablet(db, cohort_id, label)["code"])
    client = app.test_client()
    client.set_cookie("kiosk_tablet", token)
    client.tablet = tablet
    return client


# --- venue time and events ----------------------------------------------------------------------

def bangkok(day: str, hhmm: str) -> datetime:
    """A moment given in venue time (Asia/Bangkok), e.g. bangkok("2026-11-21", "09:00")."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=LOCAL_ZONE)


def open_window(hours: int = 3) -> tuple[str, str]:
    """A check-in window around now in venue time, so scans without `at` land in it."""
    now = now_utc().astimezone(LOCAL_ZONE)
    opens = max(now - timedelta(hours=hours), now.replace(hour=0, minute=0))
    closes = min(now + timedelta(hours=hours), now.replace(hour=23, minute=59))
    return opens.strftime("%H:%M"), closes.strftime("%H:%M")


# title, first name, last name, district (Bangkok), role, phone
PEOPLE = (
    ("นางสาว", "สมหญิง", "ใจดี", "ดินแดง", "participant", "0811110001"),
    ("นาย", "สมชาย", "ศรีสุข", "ดุสิต", "participant", "0811110002"),
    ("นาง", "ลำดวน", "ผู้ใหญ่ยิ่ง", "สาทร", "speaker", "0811110003"),
    ("Mr.", "John", "Smith", "พญาไท", "staff", "0811110004"),
)


def build_event(db, *, open_now: bool = False, people=PEOPLE, extra_people: int = 0, starts_on: date | None = None,
                days: int = 2, second_cohort: bool = True, site: str | None = None, badges: bool = True,
                program_title: str = "อบรมผู้นำชุมชน") -> dict:
    """A program through the domain services: cohort 1 from `starts_on` (today) for `days` days,
    cohort 2 in 2030, and `people` (+ `extra_people` more) in cohort 1, each with a badge.

    `open_now` sets the first session's check-in window around now (venue time), so scans without
    `at` land in it.
    """
    program_id = events.create_program(db, program_title, "สำนักพัฒนาสังคม", 2570)
    program = events.get_program(db, program_id)
    site_id = events.add_site(db, program_id, site) if site else None
    cohort_id = events.add_cohort(db, program_id, 1, starts_on or local_day(), days, site_id=site_id)
    cohort2_id = events.add_cohort(db, program_id, 2, date(2030, 1, 7), 1) if second_cohort else None
    if open_now:
        opens, closes = open_window()
        first = events.sessions(db, cohort_id)[0]
        changes.write(db, program_id, "sessions", first["id"], {"opens_at": opens, "closes_at": closes})
    rows = list(people) + [("นาย", f"ทดสอบ{i}", f"คนที่{i}", "ดินแดง", "participant", "")
                           for i in range(extra_people)]
    cohort = events.cohort_by_id(db, cohort_id)
    with transaction(db):
        registered = [register_participant(db, cohort, {
            "title": title, "first_name": first, "last_name": last, "role": role,
            "province": "กรุงเทพมหานคร" if district else "", "district": district, "phone": phone},
            issue_badge=badges) for title, first, last, district, role, phone in rows]
    sessions = events.sessions(db, cohort_id)
    return {"program": program, "program_id": program_id, "site_id": site_id, "cohort_id": cohort_id,
            "cohort2_id": cohort2_id, "sessions": sessions, "session_id": sessions[0]["id"], "people": registered}


# --- sync: kiosks, enrolment, the invariant -----------------------------------------------------

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
        """A program with one site, one cohort and `sessions` session days (from 2026-03-01); their ids."""
        event = build_event(self.db, people=(), starts_on=date(2026, 3, 1), days=sessions, second_cohort=False,
                            site="ศาลาว่าการ")
        return {"program_id": event["program_id"], "site_id": event["site_id"], "cohort_id": event["cohort_id"],
                "sessions": [s["id"] for s in event["sessions"]]}

    def register(self, program: dict, n: int = 1, prefix: str = "สมชาย") -> list[str]:
        """`n` people in the program's cohort (no badges: one change each); their ids."""
        cohort = events.cohort_by_id(self.db, program["cohort_id"])
        with transaction(self.db):
            return [register_participant(self.db, cohort, {"first_name": f"{prefix}{i}", "last_name": "ใจดี"},
                                         issue_badge=False)["id"] for i in range(n)]

    def edit(self, program: dict, participant: str, **fields) -> None:
        changes.write(self.db, program["program_id"], "participants", participant, fields)

    def scan(self, program: dict, participant: str, session: str, result: str = "checked_in",
             at: str | None = None) -> str:
        scan_id = new_id()
        fields = {"participant_id": participant, "session_id": session, "result": result, "direction": "in",
                  "device_id": self.device_id, "at": at or iso(now_utc()), "nonce": secrets.token_hex(8)}
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
        from kiosk.store.schema import ENTITIES
        return {name: self.table(name) for name in [*ENTITIES, "attendance"]}

    def keys(self) -> dict[str, str]:
        """The public keys of every origin this kiosk holds (what a batch it relays carries)."""
        return dict(self.db.execute("select origin, public_key from origin_keys").fetchall())

    def close(self) -> None:
        self.db.close()


def enrol(kiosk: Kiosk, server_url: str, storage, programs=None) -> dict:
    """Enrols `kiosk` with the central server through a fresh one-time code."""
    from sync import client
    code = storage.create_enrol_code("test kiosk", programs)
    return client.enrol(kiosk.data_dir, server_url, code)


def kiosk_sync_process(kiosk: Kiosk, url: str | None = None, env: dict | None = None) -> subprocess.Popen:
    """`python -m sync --data DIR sync` as a subprocess, printing progress lines."""
    args = [sys.executable, "-m", "sync", "--data", str(kiosk.data_dir), "sync"]
    if url:
        args += ["--peer", url]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def assert_invariant(storage, kiosks: list[Kiosk]) -> None:
    """Every scan made on any kiosk is on the central server exactly once, and attendance counts
    equal the distinct (participant, session) pairs with a successful check-in."""
    made = [s for k in kiosks for s in k.made_scans]
    central = storage.scan_ids()
    assert len(central) == len(set(central)), "a scan is stored twice on the central server"
    assert set(central) == {s["id"] for s in made}, (
        f"central has {len(set(central))} scans, kiosks made {len(made)}")
    expected = {(s["participant_id"], s["session_id"]) for s in made if s["result"] == "checked_in"}
    assert storage.attendance_count() == len(expected)


class SignedDevice:
    """Another device's next changes, stamped and signed as a kiosk does it (a hostile device, or
    a kiosk of an older release): each test breaks only what it is about. Unless a test gives
    `hlc_ms`, stamps count up from just before `clock_ms`."""

    def __init__(self, clock_ms: int):
        self.origin, private = keys.new_origin()
        self.signer, self.seq, self.chain, self.clock_ms = keys.Signer(private), 1, None, clock_ms

    def change(self, program_id, entity, entity_id, payload, hlc_ms: int | None = None, **override) -> dict:
        stamp = hlc_ms if hlc_ms is not None else self.clock_ms - 1000 + self.seq
        change = {"program_id": program_id, "origin": self.origin, "seq": self.seq, "entity": entity,
                  "id": entity_id, "op": "upsert", "payload": payload,
                  "hlc": format_hlc(stamp, 0, self.origin), **override}
        self.seq += 1
        self.chain = keys.next_chain(self.chain, change)
        change["sig"] = self.signer.sign(self.chain)
        return change

    @property
    def keys(self) -> dict[str, str]:
        return {self.origin: self.signer.public_key}


def sync_post(server_url: str, endpoint: str, raw: bytes, creds: dict | None = None,
              extra_headers: dict | None = None) -> requests.Response:
    """POSTs raw bytes to a sync endpoint, signed as the enrolled device `creds` when given."""
    from sync import auth
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if creds:
        headers.update(auth.sign(creds["device_id"], creds["secret"], "POST", f"/api/sync/{endpoint}", raw))
    return requests.post(f"{server_url}/api/sync/{endpoint}", data=raw, headers=headers, timeout=30)


def push_all(db, storage, program_id: str, key: bytes | None = None) -> None:
    """Hands a kiosk database's changes of a program to a central Storage as a sync would (no HTTP):
    every batch the kiosk would send, with its origins' keys, and the program's key."""
    from kiosk.store import changes as change_log

    public = dict(db.execute("select origin, public_key from origin_keys").fetchall())
    more = True
    while more:
        batch, more = change_log.batch_since(db, program_id, storage.vector(program_id), 500)
        if batch:
            storage.push(program_id, batch, source="test", keys=public)
    if key and not storage.program_key(program_id):
        storage.store_program_key(program_id, key.hex())
