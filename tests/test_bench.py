"""Every benchmark in scripts/bench/ runs here at its smallest, so none can rot unseen.

Each runs as a subprocess, as one runs it by hand; its JSON is read back and checked for the signs
that it measured something real: requests answered, rows counted, nothing lost, no errors. These
are not timed tests: no figure of speed is ever asserted.
"""

import json
import shutil
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.slow

BENCH = ROOT / "scripts" / "bench"
# Each benchmark's smallest run.
SMOKE = {
    "badges.py": ["--people", "20"],
    "bundle.py": ["--people", "20", "--sessions", "2"],
    "central.py": ["--smoke"],  # run and checked by tests/test_bench_central.py
    "checkin.py": ["--seconds", "1", "--people", "6000", "--once", "50", "--badge-people", "20"],
    "documents.py": ["--people", "20", "--venues", "2"],
    "register.py": ["--people", "50", "--tablets", "2", "--seconds", "1"],
    "soak.py": ["--minutes", "0.1", "--sample-seconds", "2", "--badge-people", "20"],
    "sync.py": ["--kiosks", "2", "--participants", "20", "--scans", "40"],
}


def run_bench(script: str, *extra: str) -> dict:
    """Runs scripts/bench/SCRIPT with its smoke arguments (and `extra`); the JSON it printed."""
    done = subprocess.run([sys.executable, str(BENCH / script), *SMOKE[script], *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_every_benchmark_has_a_smoke_run():
    scripts = {path.name for path in BENCH.glob("*.py") if 'if __name__ == "__main__":' in path.read_text()}
    assert scripts == set(SMOKE)


def test_badge_bench_lays_out_every_badge():
    result = run_bench("badges.py")
    assert result["badges"] == 20
    assert result["pdf_bytes"] > 0 and result["per_badge_ms"] > 0
    assert result["pages"] in (None, 3)  # 8 a page; None where pdfinfo is missing


def test_bundle_bench_reads_back_every_change_on_a_fresh_kiosk():
    result = run_bench("bundle.py")
    assert result["changes"] > 20 * 2  # people and a check-in of each per session
    assert result["bundle_bytes"] > 0 and result["sealed"] is True


def test_documents_bench_builds_every_paper_and_the_central_report():
    result = run_bench("documents.py")
    assert result["signature_sheet"]["pages"] >= 1
    assert result["certificates"]["certificates"] == 20
    assert result["central_report"]["people"] == 20 * 2
    assert result["central_report"]["xlsx_mb"] >= 0


def test_checkin_bench_scans_no_badge_twice_and_finds_one_attendance_row_per_person():
    result = run_bench("checkin.py")
    runs = [result[name] for name in ("checkin_1", "checkin_8", "each_once_8", "checkin_8_during_pdf_and_sync")]
    assert all(run["repeats"] == 0 for run in runs)
    assert result["checkin_1"]["first_check_ins"] > 0 and result["checkin_1"]["non_2xx"] == 0
    assert result["ping_8"]["requests"] > 0 and result["bare_flask_waitress_ping_8"]["requests"] > 0
    once = result["each_once_8"]["database"]
    assert once["exactly_one_row_each"] and once["attendance_rows"] == 50 and once["duplicate_check_ins"] == 0
    assert result["database"]["one_attendance_per_person"] and result["database"]["repeats"] == 0
    background = result["checkin_8_during_pdf_and_sync"]["background"]
    assert background["badge_pdfs_built"] >= 1 and background["syncs"] >= 1 and background["errors"] == []
    assert {"checkins_per_second", "checkin_p99_ms", "server_cpu_ms_per_checkin", "bare_flask_waitress_ping_per_second",
            "checkin_p99_ms_during_pdf_and_sync"} <= set(result["headline"])


def test_register_bench_gives_each_walk_in_one_person_and_one_badge():
    if not shutil.which("wrk"):
        pytest.skip("register.py needs wrk (scripts/setup.sh --bench installs it)")
    result = run_bench("register.py")
    assert result["door_alone"]["requests"] > 0 and result["door_alone"]["errors"] == 0
    assert result["back_to_back"]["registration"]["requests"] > 0
    assert result["walk_ins_created"] > 0 and result["one_person_and_badge_per_submission"]


def test_soak_loses_no_acknowledged_scan_and_ends_with_kiosk_equal_to_central():
    result = run_bench("soak.py")
    assert result["requests"]["first_scan"]["count"] > 0 and result["requests"]["lookup"]["count"] > 0
    assert len(result["samples"]) >= 2 and result["samples"][-1]["kiosk_rss_mb"] > 0
    assert all(job["ok"] >= 1 and job["failed"] == 0 for job in result["jobs"].values())
    assert result["errors"] == 0 and result["wrong_answers"] == 0, result["error_examples"]
    assert result["kill"]["acknowledged_in_stream"] > 0
    assert result["lost_acknowledged"] == 0 and result["lost_attendance"] == 0
    assert result["one_attendance_per_person"] and result["kiosk_equals_central"]


def test_sync_bench_stores_every_pushed_change_on_sqlite():
    result = run_bench("sync.py", "--backends", "sqlite")["sqlite"]
    assert result["stored"] == result["changes"] > 0 and result["errors"] == []


@pytest.mark.postgres
def test_sync_bench_stores_every_pushed_change_on_postgresql(postgres_cluster):
    url = postgres_cluster.new_database()
    result = run_bench("sync.py", "--backends", "postgresql", "--postgresql", url)["postgresql"]
    assert result["stored"] == result["changes"] > 0 and result["errors"] == []
