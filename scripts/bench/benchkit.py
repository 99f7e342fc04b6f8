"""What the server benchmarks share (checkin.py, soak.py): a venue built through the domain
services, real servers on 127.0.0.1, a coordinator's browser session, and the door's ledger read
back from the database.

Not a benchmark itself: it prints nothing and has no command line.
"""

import json
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kiosk.badges.codes import make_code
from kiosk.clock import iso, local_day, new_id, now_utc  # noqa: E402
from kiosk.program import events
from kiosk.store import changes
from kiosk.store.db import open_data_dir, transaction
from kiosk.trust import accounts as auth
from kiosk.trust import programkeys

from support import CentralServer, open_window  # noqa: E402

FIRST = ("สมชาย", "สมหญิง", "ประเสริฐ", "มาลี", "วิชัย", "สุนีย์", "ธนากร", "กัลยา")
LAST = ("ใจดี", "ศรีสุข", "ชื่นทรวง", "ทองคำ", "แก้วมณี", "บุญเรือง")
PASSWORD = "benchmark-password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def badged_people(db, program_id: str, key: bytes, cohort_id: str, count: int, start: int = 0) -> list[dict]:
    """`count` people of a cohort, each with a badge: [{"id", "code", "first_name"}] (names unique
    from `start` on)."""
    stamp, people = iso(now_utc()), []
    for i in range(start, start + count):
        person = {"id": new_id(), "code": make_code(program_id, key), "first_name": f"{FIRST[i % 8]}{i}"}
        changes.write(db, program_id, "participants", person["id"], {
            "cohort_id": cohort_id, "title": "นาย", "first_name": person["first_name"], "last_name": LAST[i % 6],
            "role": "participant", "province_code": "10", "district_code": "1026", "status": "active",
            "created_at": stamp})
        changes.write(db, program_id, "badges", new_id(), {
            "participant_id": person["id"], "code": person["code"], "issued_at": stamp, "revoked_at": None})
        people.append(person)
    return people


def build_venue(data_dir: Path, groups: dict[str, int], badge_people: int) -> dict:
    """A program whose cohort 1 meets now (its session open two hours either side), with one group
    of badged people per entry of `groups` (name -> count); cohort 2, a month away, has
    `badge_people` for the badge PDF. Accounts: chief (coordinator), bench (staff, with a token)."""
    db = open_data_dir(data_dir)
    program_id = events.create_program(db, "อบรมผู้นำชุมชน (benchmark)")
    key = programkeys.badge_key(db, program_id)
    cohort_id = events.add_cohort(db, program_id, 1, local_day(), 1)
    cohort2_id = events.add_cohort(db, program_id, 2, local_day() + timedelta(days=30), 1)
    session_id = events.sessions(db, cohort_id)[0]["id"]
    opens, closes = open_window(hours=2)
    changes.write(db, program_id, "sessions", session_id, {"opens_at": opens, "closes_at": closes})
    venue = {"program_id": program_id, "cohort_id": cohort_id, "cohort2_id": cohort2_id, "session_id": session_id}
    with transaction(db):
        start = 0
        for name, count in groups.items():
            venue[name] = badged_people(db, program_id, key, cohort_id, count, start)
            start += count
        badged_people(db, program_id, key, cohort2_id, badge_people, start)
    auth.add_user(db, "chief", "coordinator", PASSWORD)
    auth.add_user(db, "bench", "staff", PASSWORD)
    venue["token"] = auth.issue_token(db, "bench")
    db.close()
    return venue


def kiosk_command(data_dir: Path, *args) -> list[str]:
    """The `kiosk` command line on a data folder, run by this interpreter."""
    return [sys.executable, "-c", "from kiosk.cli.main import main; main()", "--data", str(data_dir), *args]


def start_central_and_enrol(central_dir: Path, data_dir: Path) -> CentralServer:
    """A real central server (`kiosk-central serve`, SQLite) and the kiosk enrolled with it through
    the two command lines (`kiosk-central enrol-code`, `kiosk enrol URL CODE`)."""
    central = CentralServer(central_dir).start()
    code = subprocess.run([sys.executable, "-m", "sync.central", "--data", str(central_dir), "--db", central.db_url,
                           "enrol-code"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
    subprocess.run(kiosk_command(data_dir, "enrol", central.url, code), cwd=ROOT, check=True, capture_output=True)
    return central


def coordinator_session(base: str) -> requests.Session:
    """A logged-in coordinator's browser session, in English (so a page's outcome can be read)."""
    http = requests.Session()
    http.cookies.set("lang", "en")
    token = CSRF.search(http.get(base + "/login").text).group(1)
    http.post(base + "/login", data={"username": "chief", "password": PASSWORD, "csrf_token": token})
    return http


def csrf_of(http: requests.Session, url: str) -> str:
    """The CSRF token of the form on the page at `url`."""
    return CSRF.search(http.get(url).text).group(1)


def sync_now(http: requests.Session, base: str) -> bool:
    """"Sync now" on the sync page, as a coordinator clicks it; True if the page says it synced."""
    response = http.post(base + "/sync/now", data={"csrf_token": csrf_of(http, base + "/sync/")}, timeout=600)
    return response.ok and "Synced:" in response.text


def badge_pdf(http: requests.Session, base: str, cohort_id: str) -> bool:
    """A cohort's badge sheets, downloaded from its page as a coordinator does; True if a PDF came."""
    response = http.get(f"{base}/cohorts/{cohort_id}/badges.pdf", timeout=600)
    return response.ok and response.content.startswith(b"%PDF")


def door_ledger(db_path: Path, people: list[str] | None = None) -> dict:
    """The door's record read back from the database (read-only, beside a running server): scans by
    result, attendance rows, distinct people in them, and (participant, session) pairs checked in
    more than once; of `people` (participant ids) only, when given."""
    where, args = ("where participant_id in (select value from json_each(?))", [json.dumps(people)]) \
        if people is not None else ("where 1", [])
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        results = dict(db.execute(f"select result, count(*) from scans {where} group by result", args).fetchall())
        rows, distinct = db.execute(f"select count(*), count(distinct participant_id) from attendance {where}",
                                    args).fetchone()
        duplicates = db.execute(f"select count(*) from (select 1 from scans {where} and result = 'checked_in'"
                                " group by participant_id, session_id having count(*) > 1)", args).fetchone()[0]
    return {"scans": sum(results.values()), "first_check_ins": results.get("checked_in", 0),
            "repeats": results.get("already_checked_in", 0), "results": results, "attendance_rows": rows,
            "people_attended": distinct, "duplicate_check_ins": duplicates}


def settled_ledger(db_path: Path, people: list[str] | None = None, timeout: float = 10) -> dict:
    """The ledger once the scans still in flight when a run ended are stored (two reads agree)."""
    deadline, ledger = time.monotonic() + timeout, door_ledger(db_path, people)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = door_ledger(db_path, people)
        if again == ledger:
            break
        ledger = again
    return ledger


def one_row_per_person(ledger: dict) -> bool:
    """Attendance holds exactly one row per person checked in, and nobody was checked in twice."""
    return (ledger["attendance_rows"] == ledger["people_attended"] == ledger["first_check_ins"]
            and ledger["duplicate_check_ins"] == 0)
