"""Programs, their cohorts, session days and slots, sites and targets."""

import json
import re
from datetime import date, timedelta

from kiosk.clock import iso, new_id, now_utc
from kiosk.errors import KioskError
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.thai import ROLES, clean_text, plain_text, resolve_area
from kiosk.trust import programkeys

SLOTS = {"day": ("07:00", "17:00"), "morning": ("07:00", "12:00"), "afternoon": ("12:00", "17:00")}
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class EventError(KioskError):
    """An event set-up request that cannot be done."""


def _one(db, sql: str, args) -> dict | None:
    rows = list(db.query(sql, args))
    return rows[0] if rows else None


def create_program(db, title: str, organizer: str = "", fiscal_year: int | None = None,
                   min_percent: int = 80) -> str:
    """A new program with its own badge-signing key; returns its id."""
    title = plain_text(title, "title")
    if not title:
        raise EventError("missing_title", "a program needs a title")
    key = programkeys.new_key()
    program_id = programkeys.program_id_for(key)
    with transaction(db):
        programkeys.store(db, program_id, key, via="made here")
        changes.write(db, program_id, "programs", program_id, {
            "title": title, "organizer": clean_text(organizer), "fiscal_year": fiscal_year,
            "key_check": programkeys.key_check(key), "created_at": iso(now_utc()),
            "certificate_rule": json.dumps({"min_percent": min_percent}),
        })
    return program_id


def add_site(db, program_id: str, name: str, kind: str = "venue", address: str = "") -> str:
    """A venue, or a remote office joining by video conference."""
    name = clean_text(name)
    if not name:
        raise EventError("missing_name", "a site needs a name")
    if kind not in ("venue", "remote"):
        raise EventError("bad_kind", "site kind is venue or remote")
    site_id = new_id()
    changes.write(db, program_id, "sites", site_id, {"name": name, "kind": kind, "address": clean_text(address)})
    return site_id


def parse_day(text: str) -> date:
    """A date from ISO text (2026-11-21) or Thai Buddhist-era d/m/yyyy (21/11/2569)."""
    text = clean_text(text)
    try:
        if "/" in text:
            d, m, y = (int(x) for x in text.split("/"))
            return date(y - 543 if y > 2400 else y, m, d)
        return date.fromisoformat(text)
    except ValueError:
        raise EventError("bad_date", f"not a date: {text!r}") from None


def add_cohort(db, program_id: str, number: int, starts_on: date, days: int = 1,
               site_id: str | None = None, title: str = "") -> str:
    """A cohort with one session per day; returns its id."""
    if get_cohort(db, program_id, number):
        raise EventError("duplicate_cohort", f"cohort {number} already exists")
    if not 1 <= days <= 31:
        raise EventError("bad_days", "a cohort lasts 1 to 31 days")
    cohort_id = new_id()
    changes.write(db, program_id, "cohorts", cohort_id, {
        "number": int(number), "title": plain_text(title, "title") or f"รุ่นที่ {number}", "site_id": site_id,
        "starts_on": starts_on.isoformat(), "ends_on": (starts_on + timedelta(days=days - 1)).isoformat(),
    })
    for offset in range(days):
        add_session(db, cohort_id, starts_on + timedelta(days=offset))
    return cohort_id


def add_session(db, cohort_id: str, day: date, slot: str = "day", opens_at: str | None = None,
                closes_at: str | None = None, site_id: str | None = None, title: str = "") -> str:
    """A session day, or a morning/afternoon slot, with its check-in window."""
    cohort = _one(db, "select * from cohorts where id = ?", [cohort_id])
    if not cohort:
        raise EventError("unknown_cohort", "no such cohort")
    if slot not in SLOTS:
        raise EventError("bad_slot", "slot is day, morning or afternoon")
    opens_at, closes_at = opens_at or SLOTS[slot][0], closes_at or SLOTS[slot][1]
    if not (_HHMM.match(opens_at) and _HHMM.match(closes_at)) or opens_at >= closes_at:
        raise EventError("bad_window", "check-in window must be HH:MM to a later HH:MM")
    session_id = new_id()
    changes.write(db, cohort["program_id"], "sessions", session_id, {
        "cohort_id": cohort_id, "day": day.isoformat(), "slot": slot, "opens_at": opens_at,
        "closes_at": closes_at, "site_id": site_id or cohort["site_id"], "title": clean_text(title),
    })
    return session_id


def split_day(db, session_id: str) -> list[str]:
    """Turns a whole-day session into morning and afternoon slots (when no one is checked in yet)."""
    session = get_session(db, session_id)
    if not session or session["slot"] != "day":
        raise EventError("bad_slot", "only a whole-day session can be split")
    if _one(db, "select 1 from scans where session_id = ? limit 1", [session_id]):
        raise EventError("session_in_use", "this session already has scans")
    morning = SLOTS["morning"]
    changes.write(db, session["program_id"], "sessions", session_id,
                  {"slot": "morning", "opens_at": morning[0], "closes_at": morning[1]})
    other = add_session(db, session["cohort_id"], date.fromisoformat(session["day"]), "afternoon",
                        site_id=session["site_id"])
    return [session_id, other]


def add_target(db, program_id: str, expected: int, cohort_id: str | None = None, role: str | None = None,
               province: str = "", district: str = "", subdistrict: str = "") -> str:
    """An expected head count for a cohort (or the whole program), a role and/or an area."""
    if int(expected) < 0:
        raise EventError("bad_target", "expected count cannot be negative")
    if role and role not in ROLES:
        raise EventError("unknown_role", f"unknown role {role!r}")
    area = resolve_area(province, district, subdistrict)
    code = area.subdistrict_code or area.district_code or area.province_code
    target_id = new_id()
    changes.write(db, program_id, "targets", target_id, {
        "cohort_id": cohort_id, "role": role, "area_code": code, "expected": int(expected),
        "area_name": " ".join(x for x in (clean_text(subdistrict), clean_text(district), clean_text(province)) if x),
    })
    return target_id


def programs(db) -> list[dict]:
    """Every program, newest first."""
    return list(db.query("select * from programs order by created_at desc"))


def get_program(db, program_id: str) -> dict | None:
    return _one(db, "select * from programs where id = ?", [program_id])


def find_program(db, ref: str | None) -> dict:
    """A program by id or unique title prefix; the only one when `ref` is empty."""
    everything = programs(db)
    if not ref:
        if len(everything) == 1:
            return everything[0]
        raise EventError("choose_program", "several programs exist: name one with --program")
    found = [p for p in everything if p["id"] == ref or p["title"].startswith(ref)]
    if len(found) != 1:
        raise EventError("unknown_program", f"no single program matches {ref!r}")
    return found[0]


def cohorts(db, program_id: str) -> list[dict]:
    return list(db.query("select * from cohorts where program_id = ? order by number", [program_id]))


def get_cohort(db, program_id: str, number: int) -> dict | None:
    return _one(db, "select * from cohorts where program_id = ? and number = ?", [program_id, int(number)])


def cohort_by_id(db, cohort_id: str) -> dict | None:
    return _one(db, "select * from cohorts where id = ?", [cohort_id])


def sessions(db, cohort_id: str) -> list[dict]:
    return list(db.query("select * from sessions where cohort_id = ? order by day, opens_at", [cohort_id]))


def get_session(db, session_id: str) -> dict | None:
    return _one(db, "select * from sessions where id = ?", [session_id])


def sessions_on(db, day: date) -> list[dict]:
    """Every session held on a day, with its cohort number and program title."""
    return list(db.query(
        "select s.*, c.number as cohort_number, p.title as program_title from sessions s"
        " join cohorts c on c.id = s.cohort_id join programs p on p.id = s.program_id"
        " where s.day = ? order by s.opens_at", [day.isoformat()]))


def targets(db, program_id: str) -> list[dict]:
    return list(db.query("select * from targets where program_id = ?", [program_id]))


def sites(db, program_id: str) -> list[dict]:
    return list(db.query("select * from sites where program_id = ? order by name", [program_id]))
