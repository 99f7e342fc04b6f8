"""What the door screen shows: today's sessions and counts, people found by name, badge cards.

The read model beside `kiosk.door.checkin` (which decides and records scans): no writes here, and
nothing the door may not show (no national ID, no full phone number).
"""

from __future__ import annotations

from datetime import datetime

from kiosk.badges.issuing import active_badge, badge_card
from kiosk.clock import local_day, now_utc
from kiosk.door.checkin import CheckinError, CheckinResult, get_door_session, has_started, is_open, local_hhmm
from kiosk.people.participants import get_participant, search
from kiosk.program.events import cohort_by_id, get_program, sessions, sessions_on
from kiosk.reports import session_attendance
from kiosk.thai import ROLE_NAMES_TH, area_label, full_name

__all__ = ["badge_of", "cohort_days", "door_sessions", "refusal_json", "find_people", "get_door_session", "is_open",
           "public_participant", "public_session", "result_json", "session_attendance"]


def public_participant(p: dict | None) -> dict | None:
    """What the door may show about a person: no national ID, no phone."""
    if not p:
        return None
    return {
        "id": p["id"], "title": p.get("title") or "", "first_name": p["first_name"],
        "last_name": p["last_name"], "name": full_name(p), "role": p["role"],
        "role_name": ROLE_NAMES_TH.get(p["role"], p["role"]), "position": p.get("position") or "",
        "organization": p.get("organization") or "", "status": p["status"], "cohort_id": p["cohort_id"],
        "area": area_label(p.get("province_code"), p.get("district_code"), p.get("subdistrict_code"),
                           short=True),
    }


def public_session(s: dict | None) -> dict | None:
    """A session as the API shows it."""
    if not s:
        return None
    return {key: s.get(key) for key in ("id", "program_id", "cohort_id", "cohort_number", "day", "slot",
                                        "opens_at", "closes_at", "title")}


def result_json(result: CheckinResult) -> dict:
    """The API's body for a successful scan (no national ID, no phone)."""
    return {
        "ok": True, "status": result.status, "participant": public_participant(result.participant),
        "session": public_session(result.session), "first_checked_in_at": result.first_checked_in_at,
        "first_checked_in_time": local_hhmm(result.first_checked_in_at), "at": result.at,
        "scan_id": result.scan_id, "replayed": result.replayed,
    }


def refusal_json(error: CheckinError, db=None) -> dict:
    """What the door shows beside a refused scan's reason: who and which session, if known, and
    (given `db`) the person's own cohort and its days, to say where they belong."""
    body = {"detail": error.detail, "participant": public_participant(error.participant),
            "session": public_session(error.session), "replayed": error.replayed}
    if db is not None and error.participant and error.participant.get("cohort_id"):
        body["cohort"] = cohort_days(db, error.participant["cohort_id"])
    return body


def cohort_days(db, cohort_id: str) -> dict | None:
    """A cohort's number and the days it meets, in order."""
    cohort = cohort_by_id(db, cohort_id)
    if cohort is None:
        return None
    return {"number": cohort["number"], "days": sorted({s["day"] for s in sessions(db, cohort_id)})}


def door_sessions(db, moment: datetime | None = None) -> list[dict]:
    """Today's sessions (venue time) with their counts and whether check-in is open now."""
    moment = moment or now_utc()
    out = []
    for s in sessions_on(db, local_day(moment)):
        counts = session_attendance(db, s)
        out.append({**public_session(s), "program_title": s["program_title"], "open": is_open(s, moment),
                    "state": session_state(s, moment), **counts})
    return out


def session_state(session: dict, moment: datetime | None = None) -> str:
    """"open", "not_yet" (opens later today) or "closed" (closed, or not today)."""
    if is_open(session, moment):
        return "open"
    return "closed" if has_started(session, moment) or session["day"] != local_day(moment).isoformat() else "not_yet"


def find_people(db, query: str, session_id: str | None = None, limit: int = 20) -> list[dict]:
    """People matching any part of a Thai or Latin name, or a phone number, for a forgotten badge.

    Each carries the last digits of the phone (to tell namesakes apart) and, when a session is
    given, the time they checked in to it.
    """
    people = search(db, None, query, limit)
    present = {}
    if session_id and people:
        marks = ",".join("?" * len(people))
        present = dict(db.execute(
            f"select participant_id, first_at from attendance where session_id = ? and participant_id in ({marks})",
            [session_id, *[p["id"] for p in people]]).fetchall())
    return [{**public_participant(p), "phone_tail": (p.get("phone") or "")[-4:],
             "checked_in_at": present.get(p["id"]), "checked_in_time": local_hhmm(present.get(p["id"]))}
            for p in people]


def badge_of(db, participant_id: str) -> dict | None:
    """The printable badge card of a participant's current code, or None."""
    person = get_participant(db, participant_id)
    badge = person and active_badge(db, participant_id)
    if not badge:
        return None
    cohort = cohort_by_id(db, person["cohort_id"]) if person["cohort_id"] else None
    return badge_card(person, badge["code"], cohort, get_program(db, person["program_id"]))
