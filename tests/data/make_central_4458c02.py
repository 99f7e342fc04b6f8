"""How tests/data/central-4458c02.db.gz and central-4458c02.pg.sql.gz were made: a central server
of main at 4458c02 (before Alembic and the typed read tables), fed by a real kiosk through sync.

Run with the old code first on the path, from a worktree of that commit:

    git worktree add /tmp/central-old 4458c02
    cd /tmp/central-old && PYTHONPATH=/tmp/central-old:/tmp/central-old/tests \\
        /path/to/.venv/bin/python /path/to/tests/data/make_central_4458c02.py OUT_DIR [POSTGRES_URL]

It writes OUT_DIR/central.db (SQLite) and, with a PostgreSQL URL, fills that database the same
way (then `pg_dump --no-owner DB | gzip`). It prints the counts the upgrade test expects.
"""

import json
import sys
from pathlib import Path

from sync.client import sync_once

from scenarios import bangkok, national
from support import CentralServer, Kiosk, enrol


def build(out: Path, url: str) -> dict:
    """A central server at `url` holding two programs from one kiosk, a revoked device, an
    unused enrolment code, a coordinator with a live and an ended login session."""
    server = CentralServer(out / "server", url=url).start()
    try:
        kiosk = Kiosk(out / "venue")
        made = {"bangkok": bangkok(kiosk.db), "national": national(kiosk.db)}
        storage = server.storage()
        enrol(kiosk, server.url, storage)
        sync_once(kiosk.data_dir)
        spare = Kiosk(out / "spare")
        enrolled = enrol(spare, server.url, storage)
        storage.revoke(enrolled["device_id"])
        storage.create_enrol_code("unused door", None, hours=24 * 365 * 20)
        user = storage.add_user("office", "password123")
        storage.start_session(user)
        storage.end_session(storage.start_session(user))
        counts = {"changes": storage.change_count(), "devices": len(storage.device_list()),
                  "programs": sorted(storage.programs()), "scans": len(storage.scan_ids()),
                  "attendance": storage.attendance_count(),
                  "people": {k: len(v["people"]) for k, v in made.items()},
                  "program_ids": {k: v["program_id"] for k, v in made.items()}}
        storage.close()
        kiosk.close()
        spare.close()
        return counts
    finally:
        server.kill()


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    target = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{folder / 'central.db'}"
    print(json.dumps(build(folder, target), indent=1))
