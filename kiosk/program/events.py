"""Programs, their cohorts, session days and slots, sites and targets."""

import json
import re
from datetime import date, timedelta

from kiosk.clock import iso, new_id, now_utc
from kiosk.errors import KioskError
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.thai import ROLES, Area, area_from_codes, area_label, clean_text, plain_text, resolve_area
from kiosk.trust import programkeys

ACTIVE, REMOVED = "active", "removed"
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


def _window(slot: str, opens_at: str | None, closes_at: str | None) -> tuple[str, str]:
    """A slot's check-in window, its usual hours where none is given."""
    if slot not in SLOTS:
        raise EventError("unknown_slot", f"slot {slot!r} is day, morning or afternoon")
    opens_at, closes_at = opens_at or SLOTS[slot][0], closes_at or SLOTS[slot][1]
    if not (_HHMM.match(opens_at) and _HHMM.match(closes_at)) or opens_at >= closes_at:
        raise EventError("bad_window", "check-in window must be HH:MM to a later HH:MM")
    return opens_at, closes_at


def _refuse_overlap(db, cohort_id: str, day: str, opens_at: str, closes_at: str, other_than: str | None = None):
    """Two sessions of a cohort at the same time would split its check-ins and count twice in reports."""
    for s in sessions(db, cohort_id):
        if s["id"] != other_than and s["day"] == day and opens_at < s["closes_at"] and s["opens_at"] < closes_at:
            raise EventError("session_overlap", f"{s['opens_at']}–{s['closes_at']}")


def add_session(db, cohort_id: str, day: date, slot: str = "day", opens_at: str | None = None,
                closes_at: str | None = None, site_id: str | None = None, title: str = "") -> str:
    """A session day, or a morning/afternoon slot, with its check-in window; never overlapping
    another session of the cohort."""
    cohort = _one(db, "select * from cohorts where id = ?", [cohort_id])
    if not cohort:
        raise EventError("unknown_cohort", "no such cohort")
    opens_at, closes_at = _window(slot, opens_at, closes_at)
    _refuse_overlap(db, cohort_id, day.isoformat(), opens_at, closes_at)
    session_id = new_id()
    with transaction(db):
        changes.write(db, cohort["program_id"], "sessions", session_id, {
            "cohort_id": cohort_id, "day": day.isoformat(), "slot": slot, "opens_at": opens_at,
            "closes_at": closes_at, "site_id": site_id or cohort["site_id"], "title": clean_text(title),
            "status": ACTIVE,
        })
        if not (cohort["starts_on"] or "") <= day.isoformat() <= (cohort["ends_on"] or ""):
            _refresh_cohort_dates(db, cohort)
    return session_id


def split_day(db, session_id: str) -> list[str]:
    """Turns a whole-day session into morning and afternoon slots (when no one is checked in yet)."""
    session = get_session(db, session_id)
    if not session or session["slot"] != "day":
        raise EventError("bad_slot", "only a whole-day session can be split")
    if _one(db, "select 1 from scans where session_id = ? limit 1", [session_id]):
        raise EventError("session_in_use", "this session already has scans")
    morning = SLOTS["morning"]
    with transaction(db):
        changes.write(db, session["program_id"], "sessions", session_id,
                      {"slot": "morning", "opens_at": morning[0], "closes_at": morning[1]})
        other = add_session(db, session["cohort_id"], date.fromisoformat(session["day"]), "afternoon",
                            site_id=session["site_id"])
    return [session_id, other]


def _active_session(db, session_id: str) -> dict:
    session = get_session(db, session_id)
    if not session or session["status"] == REMOVED:
        raise EventError("unknown_session", "no such session")
    return session


def checkins(db, session_id: str) -> int:
    """How many people are checked in to a session (what removing it would stop counting)."""
    return db.execute("select count(*) from attendance where session_id = ?", [session_id]).fetchone()[0]


def edit_session(db, session_id: str, day: date, slot: str, opens_at: str | None = None,
                 closes_at: str | None = None, title: str = "") -> list[str]:
    """Corrects a session's day, slot, window or title; returns the fields changed.

    Its day stays once people have checked in (their check-ins were made on it); it may not come to
    overlap another session of the cohort.
    """
    session = _active_session(db, session_id)
    opens_at, closes_at = _window(slot, opens_at, closes_at)
    fields = {"day": day.isoformat(), "slot": slot, "opens_at": opens_at, "closes_at": closes_at,
              "title": clean_text(title)}
    if fields["day"] != session["day"] and checkins(db, session_id):
        raise EventError("session_has_checkins")
    _refuse_overlap(db, session["cohort_id"], fields["day"], opens_at, closes_at, other_than=session_id)
    changed = {k: v for k, v in fields.items() if (session.get(k) or "") != v}
    if changed:
        with transaction(db):
            changes.write(db, session["program_id"], "sessions", session_id, changed)
            _refresh_cohort_dates(db, cohort_by_id(db, session["cohort_id"]))
    return sorted(changed)


def remove_session(db, session_id: str) -> int:
    """Takes a session out of the door, sheets and reports; returns how many check-ins it holds.

    The row stays, marked removed: its check-ins are kept on record (other devices may still send
    some) but count nowhere until the session is restored.
    """
    session = _active_session(db, session_id)
    with transaction(db):
        changes.write(db, session["program_id"], "sessions", session_id, {"status": REMOVED})
        _refresh_cohort_dates(db, cohort_by_id(db, session["cohort_id"]))
    return checkins(db, session_id)


def restore_session(db, session_id: str) -> int:
    """Brings a removed session back, with its check-ins; returns how many count again."""
    session = get_session(db, session_id)
    if not session or session["status"] != REMOVED:
        raise EventError("unknown_session", "no removed session of that id")
    _refuse_overlap(db, session["cohort_id"], session["day"], session["opens_at"], session["closes_at"])
    with transaction(db):
        changes.write(db, session["program_id"], "sessions", session_id, {"status": ACTIVE})
        _refresh_cohort_dates(db, cohort_by_id(db, session["cohort_id"]))
    return checkins(db, session_id)


def move_cohort(db, cohort_id: str, first_day: date, even_with_checkins: bool = False) -> int:
    """Moves every session of a cohort by the same number of days so that it starts on `first_day`;
    returns the days moved. Refused once people have checked in, unless `even_with_checkins` (the
    demo, which moves itself to today)."""
    cohort = cohort_by_id(db, cohort_id)
    held = sessions(db, cohort_id)
    if not cohort or not held:
        raise EventError("unknown_cohort", "no such cohort, or it has no session")
    delta = (first_day - date.fromisoformat(held[0]["day"])).days
    if delta and not even_with_checkins and any(checkins(db, s["id"]) for s in held):
        raise EventError("session_has_checkins")
    if delta:
        with transaction(db):
            for s in held:
                day = date.fromisoformat(s["day"]) + timedelta(days=delta)
                changes.write(db, cohort["program_id"], "sessions", s["id"], {"day": day.isoformat()})
            _refresh_cohort_dates(db, cohort)
    return delta


def _refresh_cohort_dates(db, cohort: dict) -> None:
    """A cohort's first and last day follow its sessions."""
    first, last = db.execute("select min(day), max(day) from sessions where cohort_id = ? and status != ?",
                             [cohort["id"], REMOVED]).fetchone()
    dates = {"starts_on": first, "ends_on": last}
    if first and any(cohort.get(k) != v for k, v in dates.items()):
        changes.write(db, cohort["program_id"], "cohorts", cohort["id"], dates)


def _target_fields(db, program_id: str, expected, cohort_id, role, area: Area) -> dict:
    """A target's fields, checked: a count, a cohort of the program, a role, an area from the lists."""
    try:
        expected = int(expected)
    except (TypeError, ValueError):
        raise EventError("bad_target", f"not a count: {str(expected)[:20]!r}") from None
    if expected < 0:
        raise EventError("bad_target", "expected count cannot be negative")
    if role and role not in ROLES:
        raise EventError("unknown_role", f"unknown role {role!r}")
    cohort = cohort_by_id(db, cohort_id) if cohort_id else None
    if cohort_id and (not cohort or cohort["program_id"] != program_id):
        raise EventError("unknown_cohort", "no such cohort in this program")
    code = area.subdistrict_code or area.district_code or area.province_code
    return {"cohort_id": cohort_id or None, "role": role or None, "area_code": code, "expected": expected,
            "area_name": area_label(area.province_code, area.district_code, area.subdistrict_code) or None}


def _refuse_duplicate_target(db, program_id: str, fields: dict, other_than: str | None = None) -> None:
    """One target per cohort, role and area: a second would count the same people twice."""
    for t in targets(db, program_id):
        same = all((t[k] or None) == fields[k] for k in ("cohort_id", "role", "area_code"))
        if same and t["id"] != other_than:
            raise EventError("duplicate_target")


def add_target(db, program_id: str, expected: int, cohort_id: str | None = None, role: str | None = None,
               province: str = "", district: str = "", subdistrict: str = "", *,
               area_codes: tuple[str, str, str] | None = None) -> str:
    """An expected head count for a cohort (or the whole program), a role and/or an area.

    The area is picked from the lists (`area_codes`: province, district, subdistrict codes), or
    written by hand (the command line) and looked up.
    """
    area = area_from_codes(*area_codes) if area_codes else resolve_area(province, district, subdistrict)
    fields = _target_fields(db, program_id, expected, cohort_id, role, area)
    _refuse_duplicate_target(db, program_id, fields)
    target_id = new_id()
    changes.write(db, program_id, "targets", target_id, fields)
    return target_id


def get_target(db, target_id: str) -> dict | None:
    return _one(db, "select * from targets where id = ?", [target_id])


def edit_target(db, target_id: str, expected, cohort_id: str | None, role: str | None,
                area_codes: tuple[str, str, str]) -> list[str]:
    """Corrects a target; returns the fields changed."""
    target = _existing_target(db, target_id)
    fields = _target_fields(db, target["program_id"], expected, cohort_id, role, area_from_codes(*area_codes))
    _refuse_duplicate_target(db, target["program_id"], fields, other_than=target_id)
    changed = {k: v for k, v in fields.items() if target.get(k) != v}
    if changed:
        changes.write(db, target["program_id"], "targets", target_id, changed)
    return sorted(changed)


def remove_target(db, target_id: str) -> dict:
    """Deletes a target (a goal only: the people it counted and their attendance stay); returns it."""
    target = _existing_target(db, target_id)
    changes.write(db, target["program_id"], "targets", target_id, {}, op="delete")
    return target


def _existing_target(db, target_id: str) -> dict:
    target = get_target(db, target_id)
    if not target:
        raise EventError("unknown_target", "no such target")
    return target


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


def sessions(db, cohort_id: str, removed: bool = False) -> list[dict]:
    """A cohort's sessions in time order (with `removed=True`, only the removed ones)."""
    return list(db.query("select * from sessions where cohort_id = ? and (status = ?) = ? order by day, opens_at",
                         [cohort_id, REMOVED, removed]))


def get_session(db, session_id: str) -> dict | None:
    return _one(db, "select * from sessions where id = ?", [session_id])


def sessions_on(db, day: date) -> list[dict]:
    """Every session held on a day, with its cohort number and program title."""
    return list(db.query(
        "select s.*, c.number as cohort_number, p.title as program_title from sessions s"
        " join cohorts c on c.id = s.cohort_id join programs p on p.id = s.program_id"
        " where s.day = ? and s.status != ? order by s.opens_at", [day.isoformat(), REMOVED]))


def next_sessions(db, after: date, limit: int = 3) -> list[dict]:
    """The first sessions after a day, with their cohort number and program title."""
    return list(db.query(
        "select s.*, c.number as cohort_number, p.title as program_title from sessions s"
        " join cohorts c on c.id = s.cohort_id join programs p on p.id = s.program_id"
        " where s.day > ? and s.status != ? order by s.day, s.opens_at limit ?", [after.isoformat(), REMOVED, limit]))


def session_state(session: dict, day: date, hhmm: str) -> str:
    """Where a session's check-in stands at a venue day and time: upcoming, open or closed."""
    when = (day.isoformat(), hhmm)
    if when < (session["day"], session["opens_at"]):
        return "upcoming"
    return "open" if when < (session["day"], session["closes_at"]) else "closed"


def targets(db, program_id: str) -> list[dict]:
    return list(db.query("select * from targets where program_id = ?", [program_id]))


def sites(db, program_id: str) -> list[dict]:
    return list(db.query("select * from sites where program_id = ? order by name", [program_id]))
