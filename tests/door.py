"""Helpers for the door's tests: venue-local times and an event whose session is open now."""

from datetime import datetime, timedelta

from kiosk import events
from kiosk.clock import LOCAL_ZONE, local_day
from kiosk.clock import now_utc
from kiosk.db import transaction
from kiosk.issuance import issue_badge
from kiosk.people import add_participant, participant_fields


def bangkok(day: str, hhmm: str) -> datetime:
    """A moment given in venue time (Asia/Bangkok), e.g. bangkok("2026-11-21", "09:00")."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=LOCAL_ZONE)


def open_window() -> tuple[str, str]:
    """A check-in window around now in venue time, so scans without `at` land in it."""
    now = now_utc().astimezone(LOCAL_ZONE)
    opens = max(now - timedelta(hours=3), now.replace(hour=0, minute=0))
    closes = min(now + timedelta(hours=3), now.replace(hour=23, minute=59))
    return opens.strftime("%H:%M"), closes.strftime("%H:%M")


PEOPLE = (
    ("นางสาว", "สมหญิง", "ใจดี", "ดินแดง", "participant", "0811110001"),
    ("นาย", "สมชาย", "ศรีสุข", "ดุสิต", "participant", "0811110002"),
    ("นาง", "ลำดวน", "ผู้ใหญ่ยิ่ง", "สาทร", "speaker", "0811110003"),
    ("Mr.", "John", "Smith", "พญาไท", "staff", "0811110004"),
)


def open_event(db, extra_people: int = 0) -> dict:
    """A program whose cohort 1 has a session open now (venue time), with badged people."""
    program_id = events.create_program(db, "อบรมผู้นำการเปลี่ยนแปลง", "สำนักงานพัฒนาชุมชนจังหวัด", 2570)
    program = events.get_program(db, program_id)
    day = local_day()
    opens, closes = open_window()
    cohort_id = events.add_cohort(db, program_id, 1, day, 1)
    session = events.sessions(db, cohort_id)[0]
    events.changes.write(db, program_id, "sessions", session["id"], {"opens_at": opens, "closes_at": closes})
    rows = list(PEOPLE) + [("นาย", f"ทดสอบ{i}", f"คนที่{i}", "ดินแดง", "participant", "")
                           for i in range(extra_people)]
    people = []
    with transaction(db):
        for title, first, last, district, role, phone in rows:
            fields = participant_fields({"title": title, "first_name": first, "last_name": last, "role": role,
                                         "province": "กรุงเทพมหานคร", "district": district, "phone": phone},
                                        program["signing_key"])
            pid = add_participant(db, program_id, cohort_id, fields, "roster")
            people.append({"id": pid, "code": issue_badge(db, {"id": pid, "program_id": program_id}), **fields})
    return {"program_id": program_id, "program": program, "cohort_id": cohort_id,
            "session_id": session["id"], "people": people}
