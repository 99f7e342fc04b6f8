"""Benchmark: the door's check-in API under load, beside /api/ping and a bare Flask + waitress endpoint.

    .venv/bin/python scripts/bench/checkin.py [--people 10000] [--seconds 8] [--rounds 1] [--no-load]

Builds a program in a temporary data folder (cohort 1 of `--people` badged people meeting now,
cohort 2 of 2,000 for a badge PDF), serves it with `kiosk serve` (waitress, 8 threads) on
127.0.0.1, and drives it with `wrk` (one client thread, so that the load generator takes little
of the server's two cores; Lua script `wrk_report.lua` beside this file), in one run:

* /api/ping at 1 and 8 connections, and a bare Flask + waitress endpoint at 8;
* POST /api/checkins at 1 and 8 connections (distinct people while they last, then the same
  people again: a rescan is stored too);
* with `--rounds N`, those five runs N times over, interleaved, each figure's median reported;
* check-ins at 8 connections while a 2,000-badge PDF is built through the web page and the kiosk
  syncs with a real central server (`kiosk-central serve`), both repeated for the whole window.

Prints JSON with every figure and the targets of issue 11; server CPU is the `kiosk serve` process's. Without wrk, a Python client (threads
with keep-alive sessions) measures the same and says so ("client": "python").
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kiosk import auth, changes, events, programkeys  # noqa: E402
from kiosk.clock import LOCAL_ZONE, iso, local_day, new_id, now_utc  # noqa: E402
from kiosk.codes import make_code  # noqa: E402
from kiosk.db import open_data_dir, transaction  # noqa: E402
from support import cpu_seconds, free_port  # noqa: E402

FIRST = ("สมชาย", "สมหญิง", "ประเสริฐ", "มาลี", "วิชัย", "สุนีย์", "ธนากร", "กัลยา")
LAST = ("ใจดี", "ศรีสุข", "ชื่นทรวง", "ทองคำ", "แก้วมณี", "บุญเรือง")
BADGE_PEOPLE = 2000
BARE_APP = ("from flask import Flask, jsonify\nfrom waitress import serve\napp = Flask('bare')\n"
            "@app.get('/api/ping')\ndef ping():\n    return jsonify({'ok': True})\n"
            "serve(app, host='127.0.0.1', port={port}, threads=8, ident='bare')\n")


def _people(db, program_id, key, cohort_id, count, stamp) -> list[str]:
    codes = []
    for i in range(count):
        pid = new_id()
        changes.write(db, program_id, "participants", pid, {
            "cohort_id": cohort_id, "title": "นาย", "first_name": f"{FIRST[i % 8]}{i}", "last_name": LAST[i % 6],
            "role": "participant", "province_code": "10", "district_code": "1026", "status": "active",
            "created_at": stamp})
        code = make_code(program_id, key)
        changes.write(db, program_id, "badges", new_id(), {
            "participant_id": pid, "code": code, "issued_at": stamp, "revoked_at": None})
        codes.append(code)
    return codes


def build(data_dir: Path, people: int) -> dict:
    """The program: cohort 1 meets now with `people` badged people; cohort 2 has 2,000 for the PDF."""
    db = open_data_dir(data_dir)
    program_id = events.create_program(db, "อบรมผู้นำชุมชน (benchmark)")
    key = programkeys.badge_key(db, program_id)
    cohort_id = events.add_cohort(db, program_id, 1, local_day(), 1)
    cohort2_id = events.add_cohort(db, program_id, 2, local_day() + timedelta(days=30), 1)
    session = events.sessions(db, cohort_id)[0]
    now = now_utc().astimezone(LOCAL_ZONE)
    opens = max(now - timedelta(hours=2), now.replace(hour=0, minute=0)).strftime("%H:%M")
    closes = min(now + timedelta(hours=2), now.replace(hour=23, minute=59)).strftime("%H:%M")
    changes.write(db, program_id, "sessions", session["id"], {"opens_at": opens, "closes_at": closes})
    stamp = iso(now_utc())
    with transaction(db):
        codes = _people(db, program_id, key, cohort_id, people, stamp)
        _people(db, program_id, key, cohort2_id, BADGE_PEOPLE, stamp)
    auth.add_user(db, "chief", "coordinator", "benchmark-password")
    auth.add_user(db, "bench", "staff", "benchmark-password")
    token = auth.issue_token(db, "bench")
    db.close()
    return {"codes": codes, "token": token, "cohort2_id": cohort2_id}


def start(command: list[str], log: Path, url: str, env: dict | None = None) -> subprocess.Popen:
    """A server subprocess, once `url` answers."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    for _ in range(300):
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command[:4]} did not start:\n" + log.read_text()[-3000:])


def kiosk_command(data_dir: Path, *args) -> list[str]:
    return [sys.executable, "-c", "from kiosk.cli import main; main()", "--data", str(data_dir), *args]


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the server process has used (Linux /proc; None elsewhere)."""
    try:
        return cpu_seconds(pid)
    except (OSError, ValueError, AttributeError):
        return None


class Wrk:
    """Runs wrk (one thread) with the report script; a Python client where wrk is missing."""

    def __init__(self, codes_file: Path, token: str, seconds: float):
        self.codes_file, self.token, self.seconds = codes_file, token, seconds
        self.binary = shutil.which("wrk")
        self.offset = 0

    @property
    def client(self) -> str:
        return "wrk" if self.binary else "python"

    def run(self, url: str, connections: int, checkin: bool, server_pid: int | None = None) -> dict:
        before = server_cpu_seconds(server_pid) if server_pid else None
        result = self._wrk(url, connections, checkin) if self.binary else self._python(url, connections, checkin)
        if before is not None and result["requests"]:
            used = server_cpu_seconds(server_pid) - before
            result["server_cpu_ms_per_request"] = round(used / result["requests"] * 1000, 3)
        if checkin:
            self.offset += result["requests"]
        return result

    def _wrk(self, url, connections, checkin) -> dict:
        args = ["checkin", str(self.codes_file), str(self.offset)] if checkin else ["ping"]
        command = [self.binary, "-t1", f"-c{connections}", f"-d{max(1, round(self.seconds))}s", "--timeout", "10s",
                   "-s", str(HERE / "wrk_report.lua"), url, "--", *args]
        out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BENCH_TOKEN": self.token},
                             check=True).stdout
        return json.loads(next(line for line in out.splitlines() if line.startswith("{")))

    def _python(self, url, connections, checkin) -> dict:
        codes = self.codes_file.read_text().split()
        latencies, bad, lock, deadline = [], [0], threading.Lock(), time.perf_counter() + self.seconds
        counter = iter(range(self.offset, 10**9))

        def client():
            mine, fails = [], 0
            with requests.Session() as http:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    if checkin:
                        r = http.post(url.rsplit("/api/", 1)[0] + "/api/checkins", json={"code": codes[next(counter) % len(codes)]},
                                      headers={"Authorization": f"Bearer {self.token}"})
                    else:
                        r = http.get(url)
                    mine.append(time.perf_counter() - started)
                    fails += not r.ok
            with lock:
                latencies.extend(mine)
                bad[0] += fails

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed, ordered = time.perf_counter() - started, sorted(latencies)
        return {"requests": len(ordered), "seconds": round(elapsed, 3), "per_second": round(len(ordered) / elapsed, 1),
                "p50_ms": round(statistics.median(ordered) * 1000, 2),
                "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2), "max_ms": round(ordered[-1] * 1000, 2),
                "non_2xx": bad[0], "socket_errors": 0}


def wait_for_first_backup(data_dir: Path, timeout: float = 120) -> None:
    """`kiosk serve` backs up at start (there is no backup yet): measure after it, not beside it."""
    deadline = time.monotonic() + timeout
    while not any((data_dir / "backups").glob("*.db")) and time.monotonic() < deadline:
        time.sleep(0.2)


def median_round(rounds: list[dict]) -> dict:
    """Each figure's run with the median throughput over the rounds, with every round's throughput
    beside it (a ratio is then taken between medians, not between one lucky and one unlucky run)."""
    out = {}
    for name in rounds[0]:
        runs = sorted((r[name] for r in rounds), key=lambda run: run["per_second"])
        out[name] = dict(runs[len(runs) // 2])
        if len(runs) > 1:
            out[name]["per_second_each_round"] = [r[name]["per_second"] for r in rounds]
    return out


def coordinator_session(base: str) -> requests.Session:
    """A logged-in coordinator's browser session (CSRF token included)."""
    http = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(base + "/login").text).group(1)
    http.post(base + "/login", data={"username": "chief", "password": "benchmark-password", "csrf_token": token})
    return http


def csrf_of(http: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', http.get(url).text).group(1)


class Background:
    """The laptop's other work during the door's busiest minute: badge PDFs and syncs, on repeat."""

    def __init__(self, base: str, cohort_id: str):
        self.base, self.cohort_id = base, cohort_id
        self.stop = threading.Event()
        self.pdfs, self.syncs, self.pdf_seconds, self.sync_seconds, self.errors = 0, 0, [], [], []

    def pdf_loop(self):
        http = coordinator_session(self.base)
        while not self.stop.is_set():
            started = time.perf_counter()
            r = http.get(f"{self.base}/cohorts/{self.cohort_id}/badges.pdf", timeout=600)
            if r.ok and r.content.startswith(b"%PDF"):
                self.pdfs += 1
                self.pdf_seconds.append(round(time.perf_counter() - started, 2))
            else:
                self.errors.append(f"pdf {r.status_code}")
                return

    def sync_loop(self):
        http = coordinator_session(self.base)
        while not self.stop.is_set():
            started = time.perf_counter()
            r = http.post(self.base + "/sync/now", data={"csrf_token": csrf_of(http, self.base + "/sync/")},
                          timeout=600)
            if r.ok and "bad" not in r.url:
                self.syncs += 1
                self.sync_seconds.append(round(time.perf_counter() - started, 2))
            else:
                self.errors.append(f"sync {r.status_code}")
                return
            self.stop.wait(0.5)

    def __enter__(self):
        self.threads = [threading.Thread(target=self.pdf_loop), threading.Thread(target=self.sync_loop)]
        for t in self.threads:
            t.start()
        time.sleep(1.0)  # both under way before the door is measured
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(600)


def enrol_with_central(folder: Path, data_dir: Path, processes: list) -> None:
    """A real central server, and the kiosk enrolled with it."""
    central_dir = folder / "central"
    port = free_port()
    central = [sys.executable, "-c", "from sync.central.cli import main; main()", "--data", str(central_dir)]
    processes.append(start([*central, "serve", "--host", "127.0.0.1", "--port", str(port)],
                           folder / "central.log", f"http://127.0.0.1:{port}/api/ping"))
    code = subprocess.run([*central, "enrol-code"], capture_output=True, text=True, check=True).stdout
    code = code.split()[-1]
    subprocess.run(kiosk_command(data_dir, "enrol", f"http://127.0.0.1:{port}", code), check=True,
                   capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--no-load", action="store_true", help="skip the PDF + sync scenario")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the five unloaded figures this many times, interleaved; report each one's median "
                             "run (a shared machine's speed drifts by 10 %% within minutes)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        folder = Path(tmp)
        data_dir = folder / "kiosk"
        started = time.perf_counter()
        built = build(data_dir, args.people)
        build_seconds = time.perf_counter() - started
        codes_file = folder / "codes.txt"
        codes_file.write_text("\n".join(built["codes"]) + "\n")
        processes = []
        try:
            port, bare_port = free_port(), free_port()
            kiosk = start(kiosk_command(data_dir, "serve", "--host", "127.0.0.1", "--port", str(port)),
                          folder / "kiosk.log", f"http://127.0.0.1:{port}/api/ping",
                          {"KIOSK_DATA": str(data_dir)})
            processes.append(kiosk)
            bare = start([sys.executable, "-c", BARE_APP.replace("{port}", str(bare_port))],
                         folder / "bare.log", f"http://127.0.0.1:{bare_port}/api/ping")
            processes.append(bare)
            base = f"http://127.0.0.1:{port}"
            wait_for_first_backup(data_dir)
            wrk = Wrk(codes_file, built["token"], args.seconds)
            wrk.seconds = 2
            wrk.run(base + "/api/ping", 8, False)  # warm-up: threads, connections, caches
            wrk.run(base + "/api/ping", 8, True)
            wrk.seconds = args.seconds
            rounds = [{
                "ping_1": wrk.run(base + "/api/ping", 1, False, kiosk.pid),
                "ping_8": wrk.run(base + "/api/ping", 8, False, kiosk.pid),
                "bare_flask_waitress_ping_8": wrk.run(f"http://127.0.0.1:{bare_port}/api/ping", 8, False, bare.pid),
                "checkin_1": wrk.run(base + "/api/ping", 1, True, kiosk.pid),
                "checkin_8": wrk.run(base + "/api/ping", 8, True, kiosk.pid),
            } for _ in range(args.rounds)]
            figures = median_round(rounds)
            if not args.no_load:
                enrol_with_central(folder, data_dir, processes)
                with Background(base, built["cohort2_id"]) as load:
                    figures["checkin_8_during_pdf_and_sync"] = wrk.run(base + "/api/ping", 8, True, kiosk.pid)
                figures["checkin_8_during_pdf_and_sync"]["background"] = {
                    "badge_pdfs_built": load.pdfs, "pdf_seconds": load.pdf_seconds, "syncs": load.syncs,
                    "sync_seconds": load.sync_seconds, "errors": load.errors}
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(20)
        db = open_data_dir(data_dir)
        attended = db.execute("select count(*), count(distinct participant_id) from attendance").fetchone()
        scans = db.execute("select count(*), sum(result = 'checked_in') from scans").fetchone()
        db.close()

    c1, c8, p8, bare = (figures[k]["per_second"] for k in ("checkin_1", "checkin_8", "ping_8",
                                                           "bare_flask_waitress_ping_8"))
    loaded = figures.get("checkin_8_during_pdf_and_sync")
    targets = {
        "checkins_8_ge_checkins_1": c8 >= c1,
        "checkin_p99_8_le_25ms": figures["checkin_8"]["p99_ms"] <= 25,
        "ping_8_within_80pct_of_bare": p8 >= 0.8 * bare,
        "checkin_p99_during_pdf_and_sync_le_150ms": loaded["p99_ms"] <= 150 if loaded else None,
    }
    print(json.dumps({
        "client": wrk.client, "participants": args.people, "seconds_per_run": args.seconds, "rounds": args.rounds,
        "server_threads": 8,
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "build_seconds": round(build_seconds, 1), **figures,
        "ratios": {"checkins_8_over_1": round(c8 / c1, 2), "ping_8_over_bare": round(p8 / bare, 3)},
        "targets": targets,
        "database": {"attendance_rows": attended[0], "distinct_attended": attended[1], "scans": scans[0],
                     "checked_in_scans": scans[1],
                     "one_attendance_per_person": attended[0] == attended[1] == scans[1]},
    }, indent=2))


if __name__ == "__main__":
    main()
