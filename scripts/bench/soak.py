"""Benchmark: a soak of a compressed venue day; does the kiosk stay flat and lose nothing?

    .venv/bin/python scripts/bench/soak.py [--minutes 60] [--rate 20] [--sample-seconds 30]
        [--sync-every 60] [--backup-every 180] [--pdf-every 120] [--badge-people 2000]

Real `kiosk serve` and `kiosk-central serve` processes on 127.0.0.1, the kiosk enrolled with
central and synced once before the day starts; cohort 1 meets now. For `--minutes`, about `--rate`
requests a second, paced (a late answer does not slow the next request), mixed as at a door: first
scans and re-scans (POST /api/checkins with a staff token), name lookups (the door's search),
dashboard polls (the door's count, today's sessions, the coordinator's home page) and badge reprints
(a new badge, its PNG, then the old code scanned: refused, as expected). Beside them, on their own
clocks: a sync through the sync page, a backup (`kiosk backup`) and a cohort's badge sheet PDF
through its page (the kiosk also syncs by itself every minute and backs up every 15). The
intervals are those of a 60-minute day, scaled to `--minutes` (never below 2 s), so each happens
as often in a short run.

Every `--sample-seconds`: the kiosk server's RSS, open file descriptors and threads, central's RSS,
the database and its WAL, the log folder, and the check-in p99 over the interval.

At the end the kiosk server is killed (SIGKILL) in the middle of a stream of first scans and started
again: every scan it acknowledged, in the whole run, must be in the database. Then a sync, and the
kiosk and central must hold the same changes (version vectors), scans and attendance.

Prints JSON: the samples, RSS growth over the last half of the run, fd growth, errors (no answer,
or one that is neither 2xx nor an expected refusal), acknowledged scans lost, kiosk == central.
"""

import argparse
import json
import math
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchkit import (  # noqa: E402
    ROOT,
    badge_pdf,
    build_venue,
    coordinator_session,
    door_ledger,
    kiosk_command,
    one_row_per_person,
    start_central_and_enrol,
    sync_now,
)

from support import KioskServer, wait_until  # noqa: E402

# The door's mix: each kind's share of the paced actions (a reprint is three requests: the new
# badge, its PNG, the old code scanned).
MIX = {"first_scan": 0.35, "rescan": 0.15, "lookup": 0.20, "dashboard": 0.27, "reprint": 0.03}
KINDS = [*MIX, "badge_png", "old_badge"]  # a reprint's PNG, and its old code scanned after it
DAY_MINUTES = 60
MIN_INTERVAL = 2.0
IN_FLIGHT = 16  # requests at once; a tick finding them all busy is skipped and counted
KILL_PEOPLE = 2000  # scanned in the stream the server is killed in
KILL_AFTER_ACKS = 200
TIMEOUT = 30


class Tally:
    """What the door saw: requests, latencies, errors and expected refusals, by kind."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {kind: [] for kind in KINDS}
        self.interval_checkins: list[float] = []
        self.errors, self.refusals, self.wrong, self.examples = 0, 0, 0, []
        self.acknowledged: dict[str, str] = {}  # scan id -> participant id, of every 200 answer
        self.first_acks: set[str] = set()  # participants the door was told are checked in

    def took(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            if kind in ("first_scan", "rescan"):
                self.interval_checkins.append(seconds)

    def error(self, kind: str, what) -> None:
        with self.lock:
            self.errors += 1
            if len(self.examples) < 20:
                self.examples.append(f"{kind}: {what}"[:300])

    def refused(self) -> None:
        with self.lock:
            self.refusals += 1

    def wrong_answer(self, kind: str, status: str) -> None:
        """A 2xx answer that is not the one expected (a first scan told "already in", …)."""
        with self.lock:
            self.wrong += 1
            if len(self.examples) < 20:
                self.examples.append(f"{kind}: answered {status}")

    def ack(self, body: dict, person_id: str) -> None:
        with self.lock:
            self.acknowledged[body["scan_id"]] = person_id
            if body["status"] == "checked_in":
                self.first_acks.add(person_id)

    def interval_p99(self) -> tuple[int, float | None]:
        """Check-ins since the last call, and their p99 (ms)."""
        with self.lock:
            taken, self.interval_checkins = self.interval_checkins, []
        return len(taken), percentile(taken, 0.99)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile of latencies in seconds, in ms (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)


class Door:
    """The door's requests against a running kiosk, each recorded in a Tally."""

    def __init__(self, base: str, venue: dict, tally: Tally):
        self.base, self.venue, self.tally = base, venue, tally
        self.waiting = list(reversed(venue["door"]))  # not scanned yet; popped from the end
        self.inside: list[dict] = []  # checked in (the door was told so)
        self.revoked: set[str] = set()
        self.lock, self.local = threading.Lock(), threading.local()
        self.auth = {"Authorization": f"Bearer {venue['token']}"}
        self.first_scans_ran_out = 0

    def http(self) -> requests.Session:
        """This thread's keep-alive session (a staff token; the coordinator's cookie for pages)."""
        if not hasattr(self.local, "http"):
            self.local.http = coordinator_session(self.base)
        return self.local.http

    def call(self, kind: str, method: str, path: str, **kwargs):
        """One request, timed; None (and an error counted) when no answer came."""
        http = self.http()  # a thread's first call logs in: not part of the request's time
        started = time.perf_counter()
        try:
            response = http.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            self.tally.error(kind, type(exc).__name__)
            return None
        self.tally.took(kind, time.perf_counter() - started)
        return response

    def act(self, kind: str) -> None:
        """One action of the mix."""
        getattr(self, kind)()

    def first_scan(self) -> None:
        with self.lock:
            person = self.waiting.pop() if self.waiting else None
        if person is None:
            self.first_scans_ran_out += 1
            return self.rescan()
        if self.scan("first_scan", person, person["code"], "checked_in"):
            with self.lock:
                self.inside.append(person)

    def rescan(self) -> None:
        with self.lock:
            person = random.choice(self.inside) if self.inside else None
            code = person and person["code"]
        if person is not None:
            self.scan("rescan", person, code, "already_checked_in")

    def scan(self, kind: str, person: dict, code: str, expected: str) -> bool:
        """A badge scanned at the door; True if the door was told `expected`."""
        response = self.call(kind, "POST", "/api/checkins", json={"code": code}, headers=self.auth)
        if response is None:
            return False
        body = response.json()
        if response.status_code == 200:
            self.tally.ack(body, person["id"])
            if body["status"] != expected:
                self.tally.wrong_answer(kind, body["status"])
            return body["status"] == expected
        if response.status_code == 410 and body.get("reason") == "revoked_badge" and code in self.revoked:
            self.tally.refused()
        else:
            self.tally.error(kind, f"{response.status_code} {body.get('reason')}")
        return False

    def lookup(self) -> None:
        name = random.choice(self.venue["door"])["first_name"]
        self.expect_ok("lookup", "GET", "/api/participants/search",
                       params={"q": name, "session": self.venue["session_id"]}, headers=self.auth)

    def dashboard(self) -> None:
        """What is polled: the door's count (each door screen, every 10 s), today's sessions, the home page."""
        path = random.choices([f"/api/sessions/{self.venue['session_id']}/attendance", "/api/sessions", "/"],
                              weights=[3, 1, 1])[0]
        self.expect_ok("dashboard", "GET", path, headers=self.auth if path.startswith("/api/") else {})

    def reprint(self) -> None:
        """A forgotten badge: a new one (the old code stops working), its PNG, the old code scanned.
        The person is off the door's list meanwhile, so no other reprint of them races this one."""
        with self.lock:
            if not self.inside:
                return
            pick = random.randrange(len(self.inside))
            self.inside[pick], self.inside[-1] = self.inside[-1], self.inside[pick]
            person = self.inside.pop()
            old = person["code"]
            self.revoked.add(old)  # before asking: a rescan of it in flight is then an expected refusal
        try:
            response = self.expect_ok("reprint", "POST", f"/api/participants/{person['id']}/badge", headers=self.auth)
            if response is not None:
                answer = response.json()
                person["code"] = answer["code"]
                self.expect_ok("badge_png", "GET", answer["badge_url"], headers=self.auth)
                self.scan("old_badge", person, old, "revoked")
        finally:
            with self.lock:
                self.inside.append(person)

    def expect_ok(self, kind: str, method: str, path: str, **kwargs):
        """A request that must answer 2xx; the response, or None (an error counted)."""
        response = self.call(kind, method, path, **kwargs)
        if response is not None and not response.ok:
            self.tally.error(kind, f"{response.status_code} {path}")
            return None
        return response


class Pacer:
    """Starts `rate` door actions a second on a thread pool, on a fixed clock (open loop): a slow
    answer delays no later request; a tick finding IN_FLIGHT requests busy is skipped, and counted."""

    def __init__(self, door: Door, rate: float):
        self.door, self.rate = door, rate
        self.slots = threading.BoundedSemaphore(IN_FLIGHT)
        self.skipped, self.started = 0, 0
        self.kinds, self.weights = list(MIX), list(MIX.values())

    def run(self, seconds: float) -> None:
        """Paces the door for `seconds`, then waits for the requests still out."""
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            start = time.monotonic()
            for tick in range(int(seconds * self.rate)):
                time.sleep(max(0.0, start + tick / self.rate - time.monotonic()))
                if not self.slots.acquire(blocking=False):
                    self.skipped += 1
                    continue
                self.started += 1
                kind = random.choices(self.kinds, self.weights)[0]
                pool.submit(self._one, kind)

    def _one(self, kind: str) -> None:
        try:
            self.door.act(kind)
        except Exception as exc:  # noqa: BLE001 - a bad answer (not JSON, …) is an error, not the end
            self.door.tally.error(kind, repr(exc))
        finally:
            self.slots.release()


class Every:
    """A job on its own clock in a thread: `job()` every `interval` seconds (at once if it ran late);
    its outcomes and seconds."""

    def __init__(self, name: str, interval: float, job):
        self.name, self.interval, self.job = name, interval, job
        self.ok, self.failed, self.seconds = 0, 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        due = time.monotonic() + self.interval
        while not self.stop.wait(max(0.0, due - time.monotonic())):
            started = time.monotonic()
            try:
                done = self.job()
            except Exception:  # noqa: BLE001 - a failed job is counted; the day goes on
                done = False
            self.seconds.append(time.monotonic() - started)
            if done:
                self.ok += 1
            else:
                self.failed += 1
            due += self.interval

    def report(self) -> dict:
        return {"every_seconds": round(self.interval, 1), "ok": self.ok, "failed": self.failed,
                "median_seconds": round(statistics.median(self.seconds), 2) if self.seconds else None,
                "max_seconds": round(max(self.seconds), 2) if self.seconds else None}


def jobs(kiosk: KioskServer, venue: dict, intervals: dict) -> list[Every]:
    """The day's other work: sync, backup, a cohort's badge PDF (each with its own coordinator)."""
    sync_http, pdf_http = coordinator_session(kiosk.url), coordinator_session(kiosk.url)
    backup = kiosk_command(kiosk.data_dir, "backup")
    return [
        Every("sync", intervals["sync"], lambda: sync_now(sync_http, kiosk.url)),
        Every("backup", intervals["backup"],
              lambda: subprocess.run(backup, cwd=ROOT, capture_output=True, timeout=600).returncode == 0),
        Every("badge_pdf", intervals["pdf"], lambda: badge_pdf(pdf_http, kiosk.url, venue["cohort2_id"])),
    ]


def process_figures(pid: int) -> dict:
    """RSS (MB), open file descriptors and threads of a live process (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {"rss_mb": round(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024, 1),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(re.search(r"Threads:\s+(\d+)", status).group(1))}


def megabytes(path: Path) -> float:
    """The size of a file, or of the files in a folder, in MB; a file gone meanwhile (a log
    rotated, a backup pruned, the WAL reset) counts 0."""
    total = 0
    for one in path.rglob("*") if path.is_dir() else [path]:
        try:
            total += one.stat().st_size if one.is_file() else 0
        except OSError:
            pass
    return round(total / 2**20, 2)


class Sampler:
    """Every `seconds`, the figures of a soak: the servers' memory and fds, the data on disk, the
    check-in p99 since the last sample."""

    def __init__(self, kiosk: KioskServer, central_pid: int, tally: Tally, seconds: float):
        self.kiosk, self.central_pid, self.tally, self.every = kiosk, central_pid, tally, seconds
        self.samples: list[dict] = []
        self.start = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="sampler", daemon=True)

    def _loop(self) -> None:
        self.sample()
        while not self.stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        data = self.kiosk.data_dir
        checkins, p99 = self.tally.interval_p99()
        kiosk = process_figures(self.kiosk.pid)
        self.samples.append({
            "t_s": round(time.monotonic() - self.start, 1), "kiosk_rss_mb": kiosk["rss_mb"], "kiosk_fds": kiosk["fds"],
            "kiosk_threads": kiosk["threads"], "central_rss_mb": process_figures(self.central_pid)["rss_mb"],
            "db_mb": megabytes(data / "kiosk.db"), "wal_mb": megabytes(data / "kiosk.db-wal"),
            "log_mb": megabytes(data / "logs"), "checkins": checkins, "checkin_p99_ms": p99,
            "errors_so_far": self.tally.errors})


def growth(samples: list[dict], key: str, since: float = 0) -> float | None:
    """How much `key` grew from the first sample at or after `since` seconds to the last sample."""
    later = [s for s in samples if s["t_s"] >= since]
    return round(later[-1][key] - later[0][key], 2) if len(later) >= 2 else None


def scan_stream(url: str, token: str, people: list[dict], lock: threading.Lock, tally: Tally) -> None:
    """First scans on one connection, one after another, until the people run out or the server is gone."""
    with requests.Session() as http:
        while True:
            with lock:
                if not people:
                    return
                person = people.pop()
            try:
                response = http.post(url + "/api/checkins", json={"code": person["code"]},
                                     headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
                if response.status_code == 200:
                    tally.ack(response.json(), person["id"])
            except (requests.RequestException, ValueError):
                return


def kill_in_stream(kiosk: KioskServer, venue: dict, tally: Tally) -> dict:
    """First scans from four connections; the server SIGKILLed once KILL_AFTER_ACKS of them are
    acknowledged, then started again (same data, same port). Acknowledgements go to the tally."""
    people, before = list(venue["kill"]), len(tally.acknowledged)
    args = (kiosk.url, venue["token"], people, threading.Lock(), tally)
    threads = [threading.Thread(target=scan_stream, args=args) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(tally.acknowledged) - before >= KILL_AFTER_ACKS or not any(t.is_alive() for t in threads),
               60, "the stream's first acknowledgements")
    kiosk.kill()
    for t in threads:
        t.join(TIMEOUT)
    started = time.monotonic()
    kiosk.start(timeout=300)
    return {"acknowledged_in_stream": len(tally.acknowledged) - before, "people_left_unscanned": len(people),
            "restart_seconds": round(time.monotonic() - started, 1)}


def lost(db_path: Path, tally: Tally) -> dict:
    """Acknowledged scans missing from the database, and people the door was told are checked in
    who have no attendance row."""
    scans, people = list(tally.acknowledged), list(tally.first_acks)
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        held = db.execute("select count(*) from scans where id in (select value from json_each(?))",
                          [json.dumps(scans)]).fetchone()[0]
        attended = db.execute("select count(distinct participant_id) from attendance"
                              " where participant_id in (select value from json_each(?))",
                              [json.dumps(people)]).fetchone()[0]
    return {"acknowledged_scans": len(scans), "lost_acknowledged": len(scans) - held,
            "told_checked_in": len(people), "lost_attendance": len(people) - attended}


def kiosk_replica(db_path: Path, program_id: str) -> dict:
    """The kiosk's version vector, scan ids and attendance rows of the program."""
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        vector = dict(db.execute("select origin, seq from vectors where program_id = ?", [program_id]).fetchall())
        scans = {r[0] for r in db.execute("select id from scans where program_id = ?", [program_id])}
        attendance = db.execute("select count(*) from attendance where program_id = ?", [program_id]).fetchone()[0]
    return {"vector": vector, "scans": scans, "attendance": attendance}


def central_replica(storage, program_id: str) -> dict:
    """The same figures on the central server."""
    return {"vector": storage.vector(program_id), "scans": set(storage.scan_ids(program_id)),
            "attendance": storage.attendance_count(program_id)}


def replicas_agree(kiosk: KioskServer, central, program_id: str) -> dict:
    """After one more sync: do the kiosk and central hold the same changes, scans and attendance?"""
    synced = sync_now(coordinator_session(kiosk.url), kiosk.url)
    storage = central.storage()
    try:
        there = central_replica(storage, program_id)
    finally:
        storage.close()
    here = kiosk_replica(kiosk.data_dir / "kiosk.db", program_id)

    def shown(replica):
        return {"changes": sum(replica["vector"].values()), "origins": len(replica["vector"]),
                "scans": len(replica["scans"]), "attendance": replica["attendance"]}
    return {"synced": synced, "kiosk": shown(here), "central": shown(there), "equal": here == there}


def intervals(args) -> dict:
    """The jobs' intervals in seconds: a 60-minute day's, scaled to the run (never below MIN_INTERVAL)."""
    scale = args.minutes / DAY_MINUTES
    return {"sync": max(MIN_INTERVAL, args.sync_every * scale), "backup": max(MIN_INTERVAL, args.backup_every * scale),
            "pdf": max(MIN_INTERVAL, args.pdf_every * scale)}


def people_needed(args) -> int:
    """Enough people that first scans never run out: the run's share of them, and a fifth spare."""
    return math.ceil(args.rate * args.minutes * 60 * MIX["first_scan"] * 1.2) + 10


def run_day(args, kiosk: KioskServer, central, venue: dict, tally: Tally) -> dict:
    """The day: door requests paced at `--rate`, the jobs on their clocks, samples; its figures."""
    door, seconds = Door(kiosk.url, venue, tally), args.minutes * 60
    sampler = Sampler(kiosk, central.pid, tally, args.sample_seconds)
    periodic = jobs(kiosk, venue, intervals(args))
    for worker in [sampler, *periodic]:
        worker.thread.start()
    pacer = Pacer(door, args.rate)
    pacer.run(seconds)
    for worker in [sampler, *periodic]:
        worker.stop.set()
    for worker in [*periodic, sampler]:
        worker.thread.join(600)
    sampler.sample()  # the last, once the day's work is done
    samples, half = sampler.samples, seconds / 2
    return {
        "requests": {kind: {"count": len(times), "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99)}
                     for kind, times in tally.latencies.items()},
        "door_actions_started": pacer.started, "ticks_skipped_server_busy": pacer.skipped,
        "first_scans_ran_out": door.first_scans_ran_out, "jobs": {job.name: job.report() for job in periodic},
        "rss_growth_last_half_mb": growth(samples, "kiosk_rss_mb", half),
        "central_rss_growth_last_half_mb": growth(samples, "central_rss_mb", half),
        "fd_growth_last_half": growth(samples, "kiosk_fds", half), "fd_growth_whole_run": growth(samples, "kiosk_fds"),
        "thread_growth_whole_run": growth(samples, "kiosk_threads"), "db_growth_mb": growth(samples, "db_mb"),
        "log_growth_mb": growth(samples, "log_mb"), "samples": samples}


def first_sync(kiosk: KioskServer) -> float:
    """The day starts synced: the program, its people and badges sent to central (seconds taken)."""
    started = time.perf_counter()
    if not sync_now(coordinator_session(kiosk.url), kiosk.url):
        raise SystemExit("the first sync with the central server failed:\n" + kiosk.log())
    return round(time.perf_counter() - started, 1)


def soak(args, folder: Path, venue: dict) -> dict:
    """Serves the venue for the day, kills the kiosk in a stream of scans, and checks what is left."""
    kiosk, central, tally = KioskServer(folder / "kiosk").start(), None, Tally()
    try:
        central = start_central_and_enrol(folder / "central", kiosk.data_dir)
        synced_first = first_sync(kiosk)
        day = run_day(args, kiosk, central, venue, tally)
        kill = kill_in_stream(kiosk, venue, tally)
        losses = lost(kiosk.data_dir / "kiosk.db", tally)
        replicas = replicas_agree(kiosk, central, venue["program_id"])
        ledger = door_ledger(kiosk.data_dir / "kiosk.db")
    finally:
        kiosk.stop()
        if central is not None:
            central.stop()
    job_failures = sum(job["failed"] for job in day["jobs"].values())
    return {"first_sync_seconds": synced_first, **day,
            "errors": tally.errors + job_failures, "door_errors": tally.errors, "job_failures": job_failures,
            "error_examples": tally.examples, "expected_refusals": tally.refusals, "wrong_answers": tally.wrong,
            "kill": kill, **losses, "door_ledger": ledger, "one_attendance_per_person": one_row_per_person(ledger),
            "replicas": replicas, "kiosk_equals_central": replicas["equal"] and replicas["synced"]}


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60, help="length of the day (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20, help="door requests a second (default %(default)s)")
    parser.add_argument("--sample-seconds", type=float, default=30, help="seconds between samples")
    parser.add_argument("--sync-every", type=float, default=60, help="seconds between syncs in a 60-minute day")
    parser.add_argument("--backup-every", type=float, default=180, help="seconds between backups in a 60-minute day")
    parser.add_argument("--pdf-every", type=float, default=120, help="seconds between badge PDFs in a 60-minute day")
    parser.add_argument("--badge-people", type=int, default=2000, help="people on the cohort's badge PDF")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    people = people_needed(args)
    with tempfile.TemporaryDirectory(prefix="kiosk-soak-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        venue = build_venue(folder / "kiosk", {"door": people, "kill": KILL_PEOPLE}, args.badge_people)
        build_seconds = round(time.perf_counter() - started, 1)
        figures = soak(args, folder, venue)
    print(json.dumps({
        "minutes": args.minutes, "rate_per_second": args.rate, "mix": MIX, "sample_seconds": args.sample_seconds,
        "intervals_seconds": {k: round(v, 1) for k, v in intervals(args).items()},
        "people": {"door": people, "kill_stream": KILL_PEOPLE, "badge_pdf": args.badge_people},
        "build_seconds": build_seconds, "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()], **figures,
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
