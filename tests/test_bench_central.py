"""scripts/bench/central.py runs end to end in its tiny form and prints the figures it promises."""

import json
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.slow


def test_the_central_benchmark_smoke_run_prints_pages_export_and_ingest():
    done = subprocess.run([sys.executable, "scripts/bench/central.py", "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["build"]["people"] == 600 and found["build"]["attendance_rows"] > 0
    for page in ("national", "province", "district"):
        assert found["pages"][page]["p95_ms"] >= found["pages"][page]["p50_ms"] > 0
    assert found["export"]["people"] > 0 and found["export"]["server_peak_rss_mb"] > 0
    for ingest in found["ingest"]:  # one server process, then two
        assert ingest["errors"] == [] and ingest["stored"] == ingest["changes"] == 120 and ingest["changes_per_s"] > 0
    assert [i["processes"] for i in found["ingest"]] == [1, 2]
