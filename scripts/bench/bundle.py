"""Benchmark: a USB bundle of one venue's day, written and read back on a fresh kiosk; prints JSON.

    .venv/bin/python scripts/bench/bundle.py [--people 2000] [--sessions 2]

A kiosk holds a program with `--people` people and a check-in of each per session; the bundle
of all its changes is written (sealed for the program, signed by the kiosk) and imported whole
onto an empty kiosk with the program's key typed in. Reports sizes, seconds and changes per second
of each side, and the machine's load average (the machine may be shared).
"""

import argparse
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sync import bundle  # noqa: E402

from support import Kiosk  # noqa: E402


def _key(kiosk: Kiosk, program_id: str) -> dict:
    """The key argument of import_kiosk, where this version of the code has one."""
    if "program_key" not in inspect.signature(bundle.import_kiosk).parameters:
        return {}
    from kiosk.trust import programkeys
    return {"program_key": programkeys.key_of(kiosk.db, program_id)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Kiosk(Path(tmp) / "door")
        program = source.create_program(sessions=args.sessions)
        source.scan_many(program, source.register(program, args.people))
        count = source.db.execute("select count(*) from changes").fetchone()[0]
        path = Path(tmp) / "stick.jsonl.gz"
        started = time.perf_counter()
        bundle.export_kiosk(source.db, path)
        written = time.perf_counter() - started
        target = Kiosk(Path(tmp) / "fresh")
        started = time.perf_counter()
        result = bundle.import_kiosk(target.db, path, trust_new=True, **_key(source, program["program_id"]))
        read = time.perf_counter() - started
        assert result["applied"] == count
        print(json.dumps({
            "changes": count, "bundle_bytes": path.stat().st_size,
            "export_s": round(written, 3), "export_changes_per_s": round(count / written),
            "import_s": round(read, 3), "import_changes_per_s": round(count / read),
            "sealed": bool(_key(source, program["program_id"])), "load_average": os.getloadavg(),
        }, indent=2))
        source.close()
        target.close()


if __name__ == "__main__":
    main()
