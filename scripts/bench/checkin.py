"""Benchmark: POST /api/checkins beside GET /api/ping, on one real server, in one run.

    .venv/bin/python scripts/bench/checkin.py [--people 10000] [--clients 8] [--threads 8]

Builds a 10,000-participant program in a temporary data folder, serves it with `kiosk serve`
(waitress) on 127.0.0.1 in a subprocess, and drives it from N client threads (requests.Session,
keep-alive): first pings, then check-ins of distinct people. Prints JSON: throughput and
p50/p99 latency of each, their ratio, the targets (check-in throughput >= 50 % of ping's,
p99 <= 25 ms), and whether the database holds exactly one attendance per person sent.
"""

import argparse
import json
import os
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
sys.path.insert(0, str(ROOT))

from kiosk import auth, changes, events  # noqa: E402
from kiosk.clock import LOCAL_ZONE, local_day  # noqa: E402
from kiosk.clock import iso, new_id, now_utc  # noqa: E402
from kiosk.codes import make_code  # noqa: E402
from kiosk.db import open_data_dir, transaction  # noqa: E402

FIRST = ("สมชาย", "สมหญิง", "ประเสริฐ", "มาลี", "วิชัย", "สุนีย์", "ธนากร", "กัลยา")
LAST = ("ใจดี", "ศรีสุข", "ชื่นทรวง", "ทองคำ", "แก้วมณี", "บุญเรือง")


def build(data_dir: Path, people: int) -> tuple[list[str], str]:
    """A program whose cohort 1 meets now, with `people` badged participants; (codes, token)."""
    db = open_data_dir(data_dir)
    program_id = events.create_program(db, "อบรมผู้นำชุมชน (benchmark)")
    key = bytes.fromhex(events.get_program(db, program_id)["signing_key"])
    cohort_id = events.add_cohort(db, program_id, 1, local_day(), 1)
    session = events.sessions(db, cohort_id)[0]
    now = now_utc().astimezone(LOCAL_ZONE)
    opens = max(now - timedelta(hours=2), now.replace(hour=0, minute=0)).strftime("%H:%M")
    closes = min(now + timedelta(hours=2), now.replace(hour=23, minute=59)).strftime("%H:%M")
    changes.write(db, program_id, "sessions", session["id"], {"opens_at": opens, "closes_at": closes})
    codes, stamp = [], iso(now_utc())
    with transaction(db):
        for i in range(people):
            pid = new_id()
            changes.write(db, program_id, "participants", pid, {
                "cohort_id": cohort_id, "title": "นาย", "first_name": f"{FIRST[i % 8]}{i}",
                "last_name": LAST[i % 6], "role": "participant", "province_code": "10",
                "district_code": "1026", "status": "active", "created_at": stamp})
            code = make_code(program_id, key)
            changes.write(db, program_id, "badges", new_id(), {
                "participant_id": pid, "code": code, "issued_at": stamp, "revoked_at": None})
            codes.append(code)
    auth.add_user(db, "chief", "coordinator", "benchmark-password")
    auth.add_user(db, "bench", "staff", "benchmark-password")
    token = auth.issue_token(db, "bench")
    db.close()
    return codes, token


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path, port: int, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-c", "from kiosk.cli import main; main()", "--data", str(data_dir), "serve",
               "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)]
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "KIOSK_DATA": str(data_dir)})
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/ping", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start:\n" + (data_dir / "server.log").read_text())


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None


def drive(clients: int, jobs: list[list], send, server_pid: int) -> dict:
    """Runs each client's job list on its own thread and keep-alive session; latency stats.

    CPU per request, of the server and of this client process, says who was the bottleneck
    whatever else the machine was doing.
    """
    latencies, failures, lock = [], [], threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(share):
        mine, bad = [], []
        with requests.Session() as http:
            barrier.wait()
            for job in share:
                started = time.perf_counter()
                ok = send(http, job)
                mine.append(time.perf_counter() - started)
                if not ok:
                    bad.append(job)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=client, args=(jobs[i],)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started, server_cpu, client_cpu = time.perf_counter(), cpu_seconds(server_pid), time.process_time()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - server_cpu if server_cpu is not None else None
    client_cpu = time.process_time() - client_cpu
    ordered = sorted(latencies)
    return {
        "server_cpu_ms_per_request": round(server_cpu / len(ordered) * 1000, 3) if server_cpu else None,
        "client_cpu_ms_per_request": round(client_cpu / len(ordered) * 1000, 3),
        "requests": len(ordered), "failed": len(failures), "seconds": round(elapsed, 3),
        "per_second": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    parser.add_argument("--pings", type=int, default=4000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as folder:
        data_dir = Path(folder)
        started = time.perf_counter()
        codes, token = build(data_dir, args.people)
        build_seconds = time.perf_counter() - started
        port = free_port()
        server = serve(data_dir, port, args.threads)
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
        try:
            def ping(http, _job):
                response = http.get(base + "/api/ping")
                return response.status_code == 200

            def check_in(http, code):
                response = http.post(base + "/api/checkins", headers=headers,
                                     json={"code": code, "nonce": os.urandom(8).hex()})
                return response.status_code == 200 and response.json()["status"] == "checked_in"

            warm = codes[:args.clients * 10]
            pid = server.pid
            drive(args.clients, [[None] * 50] * args.clients, ping, pid)
            drive(args.clients, [warm[i::args.clients] for i in range(args.clients)], check_in, pid)
            pings = drive(args.clients, [[None] * (args.pings // args.clients)] * args.clients, ping, pid)
            rest = codes[len(warm):]
            checkins = drive(args.clients, [rest[i::args.clients] for i in range(args.clients)], check_in, pid)
        finally:
            server.terminate()
            server.wait(10)
        db = open_data_dir(data_dir)
        attended = db.execute("select count(*), count(distinct participant_id) from attendance").fetchone()
        scans = db.execute("select count(*) from scans").fetchone()[0]
        db.close()

    ratio = checkins["per_second"] / pings["per_second"]
    sent = len(codes)
    print(json.dumps({
        "participants": args.people, "clients": args.clients, "server_threads": args.threads,
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "build_seconds": round(build_seconds, 1),
        "ping": pings, "checkin": checkins, "checkin_vs_ping": round(ratio, 3),
        "targets": {"throughput_ratio_ge_0.5": ratio >= 0.5, "checkin_p99_le_25ms": checkins["p99_ms"] <= 25},
        "people_sent": sent, "attendance_rows": attended[0], "distinct_attended": attended[1], "scans": scans,
        "no_lost_or_double": attended == (sent, sent) and scans == sent and checkins["failed"] == 0,
    }, indent=2))


if __name__ == "__main__":
    main()
