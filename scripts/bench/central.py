"""Benchmark: the central server at national scale; prints JSON.

Builds one national program (`--people` across `--venues`, a cohort and six sessions each, about
five attendance rows a person, the venues spread over every province's subdistricts, targets per
venue area) by a bulk path that writes the tables the projection keeps (typed rows, attendance,
scans, owners, area_counts; PostgreSQL by COPY), without a change log. Then, through real
`kiosk-central serve` processes over HTTP:

* dashboard pages (national, the largest province, one of its districts): p50/p95 of `--requests`;
* the largest province's people as XLSX (streamed): seconds, size, the server's peak RSS;
* ingest: `--kiosks` pushers at once, `--changes` signed changes each (a day-end: a new session,
  walk-ins and scans of their venue's people) to `--processes` server processes (each number of a
  list measured in turn, on the same database).

    .venv/bin/python scripts/bench/central.py --backend postgresql --people 1000000 --venues 2000
    .venv/bin/python scripts/bench/central.py --backend sqlite --people 100000 --venues 200
    .venv/bin/python scripts/bench/central.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import geothai  # noqa: E402

from kiosk.clock import format_hlc  # noqa: E402
from kiosk.trust import keys  # noqa: E402
from sync.central.storage import Storage  # noqa: E402
from sync.central.storage.projection import bulk_row  # noqa: E402
from sync.central.storage.tables import (  # noqa: E402
    READ_TABLES,
    attendance,
    owners,
    participants,
    scans,
    vectors,
)
from sync.protocol import PROTOCOL, encode_body, split_batches  # noqa: E402

from support import CentralServer, PostgresCluster  # noqa: E402


def _sync_bench():
    """scripts/bench/sync.py, whose pusher this benchmark's kiosks use too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_sync", Path(__file__).with_name("sync.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

PROGRAM = "national-bench-0001"
SESSIONS = 6
FIRST = ("สมชาย", "สมหญิง", "ประเสริฐ", "มาลี", "วิชัย", "สุนีย์", "อนุชา", "ลำดวน", "กล่ำ", "ฐุติมา")
LAST = ("ใจดี", "ศรีสุข", "ทองคำ", "แก้วมณี", "บุญเรือง", "ผู้ที่มั่น", "มั่นคง", "เจริญผล", "ชื่นฉ่ำ", "ปิ่นทอง")


# --- the national program, built in bulk ---------------------------------------------------------

def venue_areas(venues: int) -> list[str]:
    """`venues` subdistrict codes spread evenly over the country's 7,436."""
    codes = [s.code for p in geothai.provinces() for d in geothai.districts(p.code) for s in geothai.subdistricts(d.code)]
    step = len(codes) / venues
    return [codes[int(v * step)] for v in range(venues)]


def venue_sizes(people: int, venues: int) -> list[int]:
    """People per venue: from half to one and a half times the mean, adding up to `people`."""
    weights = [0.5 + (v * 7919 % 1000) / 1000 for v in range(venues)]
    sizes = [int(people * w / sum(weights)) for w in weights]
    sizes[0] += people - sum(sizes)
    return sizes


def role_of(i: int) -> str:
    return "speaker" if i % 50 == 0 else "staff" if i % 25 == 1 else "observer" if i % 100 == 2 else "participant"


def setup_rows(venues: int, areas: list[str], target: int) -> dict[str, list[dict]]:
    """The program, its sites, cohorts, sessions and targets as typed rows."""
    rows = {"programs": [bulk_row("programs", PROGRAM, {"id": PROGRAM, "title": "โครงการอาสาสมัครพัฒนาชุมชนทั่วประเทศ",
                                                        "organizer": "กรมการพัฒนาชุมชน", "fiscal_year": 2570})],
            "sites": [], "cohorts": [], "sessions": [], "targets": []}
    for v, area in enumerate(areas):
        rows["sites"].append(bulk_row("sites", PROGRAM, {"id": f"site-{v}", "name": f"ศาลาประชาคม {v + 1}"}))
        rows["cohorts"].append(bulk_row("cohorts", PROGRAM, {"id": f"c-{v}", "number": v + 1, "site_id": f"site-{v}",
                                                             "starts_on": "2026-11-02", "ends_on": "2026-11-07"}))
        for d in range(SESSIONS):
            rows["sessions"].append(bulk_row("sessions", PROGRAM, {"id": f"s-{v}-{d}", "cohort_id": f"c-{v}",
                                                                   "day": f"2026-11-0{2 + d}", "site_id": f"site-{v}"}))
        rows["targets"].append(bulk_row("targets", PROGRAM, {"id": f"t-{v}", "cohort_id": f"c-{v}", "area_code": area,
                                                             "role": "participant", "expected": target}))
    return rows


def venue_people(v: int, size: int, area: str):
    """(person row, attendance rows, scan rows) of one venue's people."""
    rate = 0.67 + 0.33 * ((v * 2654435761) % 1000) / 1000  # each venue its own share of presence
    for i in range(size):
        pid = f"p-{v}-{i}"
        marks = [d for d in range(SESSIONS) if ((i * 7 + d * 13 + v) % 1000) / 1000 < rate]
        person = bulk_row("participants", PROGRAM, {
            "id": pid, "cohort_id": f"c-{v}", "title": "นาย" if i % 2 else "นาง", "first_name": FIRST[i % 10],
            "last_name": f"{LAST[(i // 10) % 10]}{i}", "role": role_of(i), "status": "active",
            "province_code": area[:2], "district_code": area[:4], "subdistrict_code": area,
            "position": "อาสาสมัครพัฒนาชุมชน", "organization": f"ตำบล {area}", "attended": len(marks)})
        at = [f"2026-11-0{2 + d}T01:{i % 60:02d}:00.000Z" for d in marks]
        yield (person,
               [{"program_id": PROGRAM, "participant_id": pid, "session_id": f"s-{v}-{d}", "first_at": t,
                 "first_scan_id": f"x-{v}-{i}-{d}"} for d, t in zip(marks, at)],
               [{"program_id": PROGRAM, "id": f"x-{v}-{i}-{d}", "participant_id": pid, "session_id": f"s-{v}-{d}",
                 "result": "checked_in", "direction": "in", "device_id": f"door-{v}", "at": t, "origin": f"bench-{v}",
                 "received_from": f"door-{v}", "clock_offset_s": None, "via": "paper" if i % 20 == 0 else "door"}
                for d, t in zip(marks, at)])


class Loader:
    """Writes rows in bulk: COPY on PostgreSQL, executemany on SQLite, in chunks."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.pending: dict = {}

    def add(self, table, rows) -> None:
        self.pending.setdefault(table.name, (table, []))[1].extend(rows)
        if len(self.pending[table.name][1]) >= 50_000:
            self.flush(table.name)

    def flush(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.pending):
            table, rows = self.pending.pop(key, (None, []))
            if rows:
                self._write(table, rows)

    def _write(self, table, rows: list[dict]) -> None:
        if self.storage.dialect != "postgresql":
            with self.storage.write() as conn:
                self.storage.bulk_insert(conn, table, rows)
            return
        names = list(rows[0])
        raw = self.storage.engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cur, cur.copy(
                    f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[n] for n in names])
            raw.driver_connection.commit()
        finally:
            raw.close()


def build(storage: Storage, people: int, venues: int) -> dict:
    """The national program in the tables; returns its counts."""
    started = time.perf_counter()
    areas, sizes = venue_areas(venues), venue_sizes(people, venues)
    loader = Loader(storage)
    for entity, rows in setup_rows(venues, areas, round(people / venues)).items():
        loader.add(READ_TABLES[entity], rows)
        loader.add(owners, [{"entity_id": r["id"], "program_id": PROGRAM} for r in rows])
    marks = 0
    for v, (area, size) in enumerate(zip(areas, sizes)):
        for person, came, scanned in venue_people(v, size, area):
            loader.add(participants, [person])
            loader.add(owners, [{"entity_id": person["id"], "program_id": PROGRAM}])
            loader.add(attendance, came)
            loader.add(scans, scanned)
            marks += len(came)
    loader.add(vectors, [{"program_id": PROGRAM, "origin": "bench", "seq": 1, "chain": None}])
    loader.flush()
    with storage.write() as conn:
        storage.count_areas(conn, PROGRAM)
    if storage.dialect == "postgresql":
        with storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return {"people": people, "venues": venues, "attendance_rows": marks, "build_seconds": round(time.perf_counter() - started, 1)}


def largest_province(storage: Storage) -> tuple[str, str]:
    """The province with the most people, and its district with the most."""
    with storage.engine.connect() as conn:
        province = conn.exec_driver_sql(
            "select province_code from area_counts group by province_code order by sum(registered) desc limit 1").scalar()
        district = conn.exec_driver_sql(
            f"select district_code from area_counts where province_code = '{province}' group by district_code"
            " order by sum(registered) desc limit 1").scalar()
    return province, district


# --- measuring through real server processes -----------------------------------------------------

def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def logged_in(server) -> requests.Session:
    session = requests.Session()
    page = session.get(server.url + "/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = session.post(server.url + "/login", data={"username": "bench", "password": "bench-password",
                                                        "csrf_token": token}, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:300]
    return session


def timed(session: requests.Session, url: str, repeat: int) -> dict:
    for _ in range(2):  # warm-up
        assert session.get(url).status_code == 200
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = session.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)], 1), "requests": repeat}


def measure_pages(work: Path, url: str, repeat: int, province: str, district: str) -> dict:
    with CentralServer(work / "pages", url=url) as server:
        session = logged_in(server)
        base = f"{server.url}/national/{PROGRAM}"
        found = {"overview": timed(session, server.url + "/", repeat), "national": timed(session, base, repeat),
                 "province": {**timed(session, f"{base}?area={province}", repeat), "area": province},
                 "district": {**timed(session, f"{base}?area={district}", repeat), "area": district}}
        found["server_peak_rss_mb"] = peak_rss_mb(server.pid)
    return found


def measure_export(work: Path, url: str, province: str) -> dict:
    """The province's people as XLSX from a fresh server: its peak RSS is the export's."""
    with CentralServer(work / "export", url=url) as server:
        session = logged_in(server)
        before = peak_rss_mb(server.pid)
        started = time.perf_counter()
        size = 0
        with session.get(f"{server.url}/national/{PROGRAM}/people.xlsx?area={province}", stream=True) as answer:
            assert answer.status_code == 200, answer.status_code
            for chunk in answer.iter_content(1 << 16):
                size += len(chunk)
        seconds = time.perf_counter() - started
        return {"area": province, "seconds": round(seconds, 1), "xlsx_mb": round(size / 2**20, 1),
                "server_rss_before_mb": before, "server_peak_rss_mb": peak_rss_mb(server.pid)}


# --- ingest: kiosks pushing their day at once ----------------------------------------------------

def day_end(signer: keys.Signer, v: int, size: int, count: int) -> list[dict]:
    """A venue kiosk's day: a new session, some walk-ins, and scans of its people, signed."""
    origin, out = signer.origin, []
    start = int(time.time() * 1000) - 3_600_000

    def add(entity, entity_id, payload):
        out.append({"program_id": PROGRAM, "origin": origin, "seq": len(out) + 1, "entity": entity, "id": entity_id,
                    "op": "upsert", "payload": payload, "hlc": format_hlc(start + len(out), 0, origin)})
    session = f"s-{v}-extra-{secrets.token_hex(3)}"
    add("sessions", session, {"cohort_id": f"c-{v}", "day": "2026-11-09"})
    walk_ins = max(1, count // 20)
    people = [f"p-{v}-{i}" for i in range(min(size, count))]
    for w in range(walk_ins):
        person = f"w-{v}-{origin[:8]}-{w}"
        add("participants", person, {"cohort_id": f"c-{v}", "first_name": "เดินเข้า", "last_name": f"คนที่{w}",
                                     "role": "participant", "status": "active", "registered_via": "tablet"})
        people.append(person)
    while len(out) < count:
        person = people[len(out) % len(people)]
        add("scans", secrets.token_hex(16), {"participant_id": person, "session_id": session, "code": "A" * 20,
                                             "result": "checked_in", "direction": "in", "device_id": origin,
                                             "operator": "door", "at": "2026-11-09T01:30:00.000Z",
                                             "nonce": secrets.token_hex(8)})
    chain = None
    for change in out:
        chain = keys.next_chain(chain, change)
        change["sig"] = signer.sign(chain)
    return out


def measure_ingest(work: Path, url: str, storage: Storage, kiosks: int, changes: int, processes: int,
                   sizes: list[int]) -> dict:
    prepared = []
    for k in range(kiosks):
        signer = keys.Signer(keys.new_origin()[1])
        device = storage.enrol(storage.create_enrol_code(), origin=signer.origin, public_key=signer.public_key)
        stream = day_end(signer, k, sizes[k % len(sizes)], changes)
        bodies = [encode_body({"protocol": PROTOCOL, "program_id": PROGRAM, "changes": b,
                               "keys": {signer.origin: signer.public_key}}) for b in split_batches(stream)]
        prepared.append((device["device_id"], device["secret"], bodies))
    before = storage.change_count()
    servers = [CentralServer(work / f"ingest-{n}", url=url, threads=8).start() for n in range(processes)]
    errors: list = []
    try:
        pushers = _sync_bench()
        seconds = pushers.run_together([threading.Thread(target=pushers.push_all, args=(
            servers[k % processes].url, d, s, b, errors)) for k, (d, s, b) in enumerate(prepared)])
        peaks = [peak_rss_mb(s.pid) for s in servers]
    finally:
        for server in servers:
            server.kill()
    stored = storage.change_count() - before
    return {"kiosks": kiosks, "changes_per_kiosk": changes, "processes": processes, "changes": kiosks * changes,
            "stored": stored, "errors": errors[:3], "seconds": round(seconds, 2),
            "changes_per_s": round(kiosks * changes / seconds), "server_peak_rss_mb": peaks}


# --- the run -------------------------------------------------------------------------------------

def run(args, work: Path, url: str) -> dict:
    storage = Storage(url)
    held = storage.entity_row(PROGRAM, "programs", PROGRAM)
    built = {"reused": True} if held else build(storage, args.people, args.venues)
    try:
        storage.add_user("bench", "bench-password")
    except Exception:  # noqa: BLE001 - a reused database has the account already
        pass
    province, district = largest_province(storage)
    result = {"build": built, "pages": measure_pages(work, url, args.requests, province, district),
              "export": measure_export(work, url, province)}
    with storage.engine.connect() as conn:
        result["export"]["people"] = int(conn.exec_driver_sql(
            f"select sum(registered) from area_counts where program_id = '{PROGRAM}' and province_code = '{province}'"
        ).scalar())
    sizes = venue_sizes(args.people, args.venues)
    result["ingest"] = [measure_ingest(work, url, storage, args.kiosks, args.changes, int(n), sizes)
                        for n in str(args.processes).split(",")]
    storage.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--venues", type=int, default=2000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--kiosks", type=int, default=20)
    parser.add_argument("--changes", type=int, default=2000, help="changes each kiosk pushes")
    parser.add_argument("--processes", default="1,2", help="central server processes taking the pushes; a list measures each")
    parser.add_argument("--requests", type=int, default=20, help="requests per dashboard page")
    parser.add_argument("--url", help="an existing database (built by an earlier run) instead of a new one")
    parser.add_argument("--smoke", action="store_true", help="a tiny run on SQLite (seconds): the script works")
    args = parser.parse_args()
    if args.smoke:
        args.people, args.venues, args.backend, args.kiosks, args.changes, args.requests = 600, 4, "sqlite", 2, 60, 3
    work = Path(tempfile.mkdtemp(prefix="bench-central-"))
    result = {"backend": args.backend, "cpus": os.cpu_count(),
              "targets": {"page_p95_ms": 1000, "export_seconds": 60, "export_rss_mb": 300,
                          "ingest_changes_per_s": 10000}}
    cluster = None
    try:
        if args.url:
            url = args.url
        elif args.backend == "sqlite":
            url = f"sqlite:///{work / 'central.db'}"
        else:
            cluster = PostgresCluster(fsync=True)  # durable, as in production, with memory for a national program
            cluster.options += " -c shared_buffers=2GB -c work_mem=64MB -c max_wal_size=8GB -c effective_cache_size=8GB"
            cluster.start()
            url = cluster.url + "/postgres"
            result["postgresql_settings"] = "shared_buffers=2GB work_mem=64MB max_wal_size=8GB fsync=on"
        result.update(run(args, work, url))
    finally:
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
