"""Benchmark: a 2,000-person roster (ten cohorts of 200) to one badge PDF.

Prints JSON: seconds and peak memory of the PDF (in a fresh subprocess, so the figure is
clean), the time per badge, and beside it the time `qrcode` alone takes to make the same QR
images, measured in the same run. Targets: ≤ 20 s and ≤ 400 MB on a 2-core machine.

    .venv/bin/python scripts/bench/badges.py [--people 2000]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kiosk.badges.codes import make_code
from kiosk.badges.issuing import badge_card
from kiosk.people.participants import participant_fields
from kiosk.program.demo import demo_people

TITLE = "โครงการปฐมนิเทศคณะกรรมการชุมชนและเจ้าหน้าที่ผู้ปฏิบัติงานชุมชน"


def cards(count: int) -> list[dict]:
    """Badge cards for `count` people: ten cohorts of 200 from the demo's names and districts."""
    out = []
    for index in range(count):
        cohort = index // 200 + 1
        person = demo_people(seed=cohort)[index % 200]
        fields = participant_fields(person)
        code = make_code("bench-program", b"k" * 32)
        out.append(badge_card({**fields, "program_id": "bench"}, code, {"title": f"รุ่นที่ {cohort}"}, {"title": TITLE}))
    return out


def child(path: str, out: str) -> None:
    """Runs in a fresh process: lays out the PDF and reports time and peak memory."""
    from kiosk.badges.pdf import badge_sheet_pdf

    data = json.loads(Path(path).read_text())
    started = time.perf_counter()
    badge_sheet_pdf(data, out)
    seconds = time.perf_counter() - started
    # the layout process plus the QR worker it starts for a big run: an upper bound of the peak
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024}))


def qrcode_alone(codes: list[str]) -> float:
    import qrcode

    started = time.perf_counter()
    for code in codes:
        qrcode.make(code)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    badge_cards = cards(args.people)
    with tempfile.TemporaryDirectory() as tmp:
        source, pdf = Path(tmp) / "cards.json", Path(tmp) / "badges.pdf"
        source.write_text(json.dumps(badge_cards, ensure_ascii=False))
        run = subprocess.run([sys.executable, __file__, "--child", str(source), str(pdf)],
                             check=True, capture_output=True, text=True)
        measured = json.loads(run.stdout)
        pdf_bytes = pdf.stat().st_size
        pages = int(subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
                    .split("Pages:")[1].split()[0]) if os.path.exists("/usr/bin/pdfinfo") else None
    qr_seconds = qrcode_alone([c["code"] for c in badge_cards])
    per_badge = measured["seconds"] / args.people * 1000
    qr_per_badge = qr_seconds / args.people * 1000
    print(json.dumps({
        "badges": args.people, "pdf_seconds": round(measured["seconds"], 2),
        "peak_rss_mb": round(measured["peak_rss_mb"], 1), "per_badge_ms": round(per_badge, 2),
        "qrcode_alone_per_badge_ms": round(qr_per_badge, 2), "ratio_to_qrcode_alone": round(per_badge / qr_per_badge, 2),
        "pages": pages, "pdf_bytes": pdf_bytes, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "targets": {"pdf_seconds_le_20": measured["seconds"] <= 20, "peak_rss_mb_le_400": measured["peak_rss_mb"] <= 400},
    }, indent=2))


if __name__ == "__main__":
    main()
