"""Benchmark: the office's papers at national scale.

* a signature sheet of one session for 2,000 people (one row QR each);
* 2,000 certificates (A4 landscape, one QR each);
* the cross-venue report on central (SQLite) for 20 venues × 2,000 people: rows read from the
  read tables into a Dataset, every report computed, the XLSX written.

Each case runs in a fresh subprocess, so its peak memory (ru_maxrss) is its own. Beside the
PDFs, fpdf2 writes the same number of pages of plain text (40 lines each, no shaping, no QR) in
the same run: the time per page of both. Target: each case ≤ 30 s.

    .venv/bin/python scripts/bench/documents.py [--people 2000] [--venues 20]
"""

import argparse
import functools
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kiosk.badges.codes import make_code
from kiosk.people.participants import participant_fields
from kiosk.program.demo import demo_people
from kiosk.reports.rows import Dataset  # noqa: E402

TITLE = "โครงการปฐมนิเทศคณะกรรมการชุมชนและเจ้าหน้าที่ผู้ปฏิบัติงานชุมชน"
KEY = b"k" * 32


@functools.lru_cache(maxsize=None)
def _names(seed: int) -> list[dict]:
    return [{**raw, **participant_fields(raw)} for raw in demo_people(seed=seed)]


def dataset(people: int, days: int = 2, venue: int = 0) -> Dataset:
    """A program with one cohort (venue number `venue`) of `people` (the demo's names and
    districts), `days` sessions, and check-ins for about nine in ten of them."""
    rng = random.Random(venue)
    program = {"id": str(uuid.UUID(int=1)), "title": TITLE, "organizer": "สำนักพัฒนาสังคม",
               "certificate_rule": '{"kind":"percent","min_percent":50,"signer_name":"นายสมศักดิ์ ผู้ที่กล่ำ"}'}
    cohort = {"id": f"c{venue}", "number": venue + 1, "site_id": f"s{venue}", "starts_on": "2026-11-21", "ends_on": "2026-11-22"}
    sessions = [{"id": f"s{venue}-{d}", "cohort_id": cohort["id"], "day": f"2026-11-{21 + d}", "slot": "day",
                 "opens_at": "07:00"} for d in range(days)]
    rows, marks, badges = [], [], {}
    for index in range(people):
        fields = {k: v for k, v in _names(index // 200 + 1)[index % 200].items()
                  if k in ("title", "first_name", "last_name", "role", "position", "organization", "province_code",
                           "district_code", "subdistrict_code")}
        pid = str(uuid.UUID(int=(venue << 32) + index + 1))
        rows.append({**fields, "id": pid, "cohort_id": cohort["id"], "status": "active"})
        badges[pid] = make_code(program["id"], KEY)
        for s in sessions:
            if rng.random() < 0.9:
                marks.append({"participant_id": pid, "session_id": s["id"], "first_at": "2026-11-21T01:05:00Z",
                              "via": "door"})
    return Dataset(program, [cohort], sessions, rows, marks, [], [{"id": f"s{venue}", "name": f"สถานที่ {venue + 1}"}], badges)


def _pages(path: Path) -> int:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def case_sheet(people: int, out: Path) -> dict:
    from kiosk.documents import papers

    data = dataset(people)
    start, cpu = time.perf_counter(), time.process_time()
    papers.sheet(data, data.sessions[0], KEY, out=out)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "pages": _pages(out)}


def case_certificates(people: int, out: Path) -> dict:
    from kiosk.documents import papers

    data = dataset(people)
    for p in data.participants:
        p["role"] = "participant"
    data.attendance = [{"participant_id": p["id"], "session_id": s["id"], "first_at": "2026-11-21T01:05:00Z",
                        "via": "door"} for p in data.participants for s in data.sessions]
    start, cpu = time.perf_counter(), time.process_time()
    count = papers.certificates(data, KEY, out=out)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "pages": _pages(out),
            "certificates": count}


def case_plain(pages: int, out: Path) -> dict:
    """fpdf2 alone: `pages` A4 pages of 40 lines of plain text, no shaping, no QR."""
    from fpdf import FPDF

    from kiosk.badges.drawing import FONT_REGULAR
    start, cpu = time.perf_counter(), time.process_time()
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("Sarabun", "", str(FONT_REGULAR))
    pdf.set_font("Sarabun", "", 11)
    for page in range(pages):
        pdf.add_page()
        for line in range(40):
            pdf.set_xy(10, 10 + line * 6.8)
            pdf.cell(190, 6, f"{page * 40 + line}  Somchai Jaidee  Community committee  District office")
    pdf.output(str(out))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "pages": pages}


def case_central(people: int, venues: int, out: Path) -> dict:
    """Central on SQLite: one program held at `venues` venues (a cohort each) of `people`, in the
    read tables as a sync leaves them; then the program's report page and its XLSX."""
    from sync.central.reports import central_dataset, central_reader
    from sync.central.storage import Storage, attendance
    from sync.central.storage.projection import bulk_row
    from sync.central.storage.tables import READ_TABLES, vectors

    storage = Storage(f"sqlite:///{out}")
    setup = time.perf_counter()
    with storage.write() as conn:
        for venue in range(venues):
            data = dataset(people, venue=venue)
            pid = data.program["id"]
            programs = [{**data.program, "signing_key": "00" * 32}] if venue == 0 else []
            for entity, items in (("programs", programs), ("cohorts", data.cohorts),
                                  ("sessions", data.sessions), ("sites", data.sites), ("participants", data.participants)):
                storage.bulk_insert(conn, READ_TABLES[entity], [bulk_row(entity, pid, item) for item in items])
            storage.bulk_insert(conn, attendance, [{"program_id": pid, "participant_id": a["participant_id"],
                                                    "session_id": a["session_id"], "first_at": a["first_at"],
                                                    "first_scan_id": f"x{venue}-{i}"} for i, a in enumerate(data.attendance)])
        # by column name: the program is then known to central (storage.programs()) whatever
        # columns the table gains
        storage.bulk_insert(conn, vectors, [{"program_id": pid, "origin": "bench", "seq": 1}])
        storage.rebuild_counts(conn)
    setup = time.perf_counter() - setup
    from kiosk.documents import papers
    from kiosk.reports import aggregates
    from kiosk.reports import pages as report_pages

    start, cpu = time.perf_counter(), time.process_time()
    report_pages.attendance_page(aggregates.summary(central_reader(storage), aggregates.Selection(pid)))
    data = central_dataset(storage, pid)
    people_total = len(data.active)
    body, _ = papers.report(data, "xlsx")
    seconds = time.perf_counter() - start
    storage.close()
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "people": people_total, "venues": venues, "xlsx_mb": round(len(body) / 2**20, 1), "setup_seconds": round(setup, 2)}


def _child(case: str, args: list) -> dict:
    """Runs one case in a fresh interpreter; adds its peak memory."""
    numbers = [a for a in args if not isinstance(a, Path)]
    code = (f"import json, resource, runpy; from pathlib import Path;"
            f"b = runpy.run_path({__file__!r});"
            f"r = b['case_{case}'](*{numbers!r}, Path({str(args[-1])!r}));"
            f"r['peak_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1);"
            f"print(json.dumps(r))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--venues", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        sheet = _child("sheet", [options.people, folder / "sheet.pdf"])
        certs = _child("certificates", [options.people, folder / "certificates.pdf"])
        plain_sheet = _child("plain", [sheet["pages"], folder / "plain1.pdf"])
        plain_certs = _child("plain", [certs["pages"], folder / "plain2.pdf"])
        central = _child("central", [options.people, options.venues, folder / "central.db"])
    for result, plain in ((sheet, plain_sheet), (certs, plain_certs)):
        result["ms_per_page"] = round(1000 * result["seconds"] / result["pages"], 2)
        result["plain_fpdf2_ms_per_page"] = round(1000 * plain["seconds"] / plain["pages"], 2)
        result["times_plain"] = round(result["ms_per_page"] / result["plain_fpdf2_ms_per_page"], 1)
        result["cpu_ms_per_page"] = round(1000 * result["cpu_seconds"] / result["pages"], 2)
        result["plain_fpdf2_cpu_ms_per_page"] = round(1000 * plain["cpu_seconds"] / plain["pages"], 2)
    for result in (sheet, certs, central):
        result["seconds"] = round(result["seconds"], 2)
        result["cpu_seconds"] = round(result["cpu_seconds"], 2)
        result["within_30s"] = result["seconds"] <= 30
    print(json.dumps({"signature_sheet": sheet, "certificates": certs, "central_report": central,
                      "note": "2 cores shared with other agents; each case in a fresh process"}, indent=2))


if __name__ == "__main__":
    main()
