"""Registration tablets: pairing, the cohort's registration settings, and the times a tablet's
late work may carry.

Pairing: a coordinator pairs a tablet for one cohort with a one-time code (shown as a QR and a
short link, valid 15 minutes); the tablet then holds a random token, of which only the hash is
kept, until the coordinator revokes it.

A registration or a scan queued on a tablet keeps the time it was made, counted from its last
contact with the laptop; the laptop accepts that time only within bounds it can check (see
"late work" below). A tablet that keeps finding people already registered pauses (lockouts).
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from kiosk.clock import LOCAL_ZONE, iso, local_day, new_id, now_utc, parse_iso
from kiosk.errors import KioskError
from kiosk.program.events import cohort_by_id
from kiosk.store.db import transaction
from kiosk.thai import ROLES, plain_text

PAIR_CODE_TTL = timedelta(minutes=15)
PAIR_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed from a screen
QUOTA_MODES = ("refuse", "waitlist")
IDLE_RANGE = (15, 600)
DEFAULT_SETTINGS = {"quota_mode": "refuse", "checkin_on_register": 0, "idle_seconds": 60, "capacity": None}
CAPACITY_MAX = 100_000
CLOCK_SKEW = timedelta(minutes=2)


class TabletError(KioskError):
    """A tablet or its settings cannot be set up as asked."""


class OfflineError(KioskError):
    """A late act whose time is out of bounds."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _one(db, sql: str, args) -> dict | None:
    rows = list(db.query(sql, args))
    return rows[0] if rows else None


# --- tablets ----------------------------------------------------------------------------------


def normalize_pair_code(code: str | None) -> str:
    """A pairing code as typed or read from a link: upper case, no dashes or spaces."""
    return re.sub(r"[^A-Z0-9]", "", str(code or "").upper())[:16]


def pair_tablet(db, cohort_id: str, label: str = "", created_by: str | None = None) -> dict:
    """A new tablet slot for a cohort and its one-time pairing code ('ABCD-EFGH', 15 minutes)."""
    if not cohort_by_id(db, cohort_id):
        raise TabletError("unknown_cohort", f"no cohort {cohort_id}")
    code = "".join(secrets.choice(PAIR_ALPHABET) for _ in range(8))
    now = now_utc()
    tablet_id = new_id()
    count = db.execute("select count(*) from tablets where cohort_id = ?", [cohort_id]).fetchone()[0]
    with transaction(db):
        db["tablets"].insert({
            "id": tablet_id, "cohort_id": cohort_id, "label": plain_text(label, "label", 40) or f"#{count + 1}",
            "pair_code_hash": _digest(code), "pair_expires_at": iso(now + PAIR_CODE_TTL),
            "created_by": created_by, "created_at": iso(now),
        })
    return {"id": tablet_id, "code": f"{code[:4]}-{code[4:]}"}


def claim_pairing(db, code: str) -> tuple[dict, str]:
    """Uses a pairing code once: returns the tablet and the token its browser keeps."""
    token = secrets.token_urlsafe(32)
    now = iso(now_utc())
    with transaction(db):
        tablet = _one(db, "select * from tablets where pair_code_hash = ? and revoked_at is null",
                      [_digest(normalize_pair_code(code))])
        if not tablet or tablet["pair_expires_at"] < now:
            raise TabletError("bad_pairing_code", "pairing code wrong, used or expired")
        db.execute("update tablets set pair_code_hash = null, pair_expires_at = null, token_hash = ?,"
                   " paired_at = ? where id = ?", [_digest(token), now, tablet["id"]])
    return tablet, token


def tablet_for_token(db, token: str | None) -> dict | None:
    """The paired, unrevoked tablet holding `token`, or None."""
    if not token or len(token) > 100:
        return None
    return _one(db, "select * from tablets where token_hash = ? and revoked_at is null", [_digest(token)])


def revoke_tablet(db, tablet_id: str) -> dict | None:
    """Unpairs a tablet at once: its browser becomes an ordinary, logged-out one."""
    with transaction(db):
        db.execute("update tablets set revoked_at = ?, token_hash = null, pair_code_hash = null"
                   " where id = ? and revoked_at is null", [iso(now_utc()), tablet_id])
    return _one(db, "select * from tablets where id = ?", [tablet_id])


def tablets_of(db, cohort_id: str) -> list[dict]:
    """A cohort's tablets, the ones still in use first, each with `registered` and `paused`."""
    rows = db.query("select t.*, (select count(*) from registration_keys k where k.tablet_id = t.id"
                    " and k.status != 'existing') as registered from tablets t where t.cohort_id = ?"
                    " order by t.revoked_at is not null, t.created_at", [cohort_id])
    return [{**t, "paused": not t["revoked_at"] and is_paused(db, t)} for t in rows]


def get_tablet(db, tablet_id: str) -> dict | None:
    """One tablet, paired or not, or None."""
    return _one(db, "select * from tablets where id = ?", [tablet_id])


def tablet_roles(tablet: dict) -> tuple[str, ...]:
    """The roles a walk-in may choose on this tablet, in the usual order (participant by default)."""
    chosen = set((tablet.get("roles") or "participant").split(","))
    return tuple(r for r in ROLES if r in chosen) or ("participant",)


def set_roles(db, tablet_id: str, roles) -> dict | None:
    """Sets the roles a tablet offers; at least one, each a known role."""
    roles = [str(r) for r in roles or ()]
    if not roles or any(r not in ROLES for r in roles):
        raise TabletError("bad_roles", "choose one or more of the roles", "roles")
    with transaction(db):
        db.execute("update tablets set roles = ? where id = ?", [",".join(r for r in ROLES if r in roles), tablet_id])
    return get_tablet(db, tablet_id)


# --- lockouts --------------------------------------------------------------------------------
# A tablet that is told again and again "these details are already registered" is probing, not
# registering: it pauses until a coordinator resumes it. A person looked up again and again
# can be registered anew only at the desk. Counted in the database, so a restart forgets nothing.

TABLET_LOOKUPS = 6
TABLET_WINDOW = timedelta(minutes=30)
PERSON_LOOKUPS = 5
PERSON_WINDOW = timedelta(hours=24)


def note_lookups(db, tablet_id: str, participant_ids) -> None:
    """Records that a tablet was told these people match what it typed."""
    now = now_utc()
    with transaction(db):
        db.execute("delete from tablet_lookups where at < ?", [iso(now - PERSON_WINDOW)])
        for participant_id in set(participant_ids):
            db.execute("insert into tablet_lookups (tablet_id, participant_id, at) values (?, ?, ?)",
                       [tablet_id, participant_id, iso(now)])


def is_paused(db, tablet: dict) -> bool:
    """Whether a tablet found TABLET_LOOKUPS registered people in TABLET_WINDOW since it was last resumed."""
    since = max(iso(now_utc() - TABLET_WINDOW), tablet.get("resumed_at") or "")
    found = db.execute("select count(*) from tablet_lookups where tablet_id = ? and at > ?",
                       [tablet["id"], since]).fetchone()[0]
    return found >= TABLET_LOOKUPS


def locked_people(db, participant_ids) -> bool:
    """Whether any of these people was looked up PERSON_LOOKUPS times in PERSON_WINDOW, on any tablet."""
    since = iso(now_utc() - PERSON_WINDOW)
    return any(db.execute("select count(*) from tablet_lookups where participant_id = ? and at > ?",
                          [pid, since]).fetchone()[0] >= PERSON_LOOKUPS for pid in set(participant_ids))


def resume_tablet(db, tablet_id: str) -> dict | None:
    """A coordinator resumes a paused tablet: its earlier lookups no longer count against it."""
    with transaction(db):
        db.execute("update tablets set resumed_at = ? where id = ?", [iso(now_utc()), tablet_id])
    return _one(db, "select * from tablets where id = ?", [tablet_id])


# --- settings ---------------------------------------------------------------------------------


def settings_of(db, cohort_id: str) -> dict:
    """A cohort's registration settings (defaults where the coordinator set none)."""
    row = _one(db, "select * from registration_settings where cohort_id = ?", [cohort_id])
    return {**DEFAULT_SETTINGS, **(row or {}), "cohort_id": cohort_id}


def save_settings(db, cohort_id: str, quota_mode: str, checkin_on_register: bool, idle_seconds,
                  capacity=None) -> dict:
    """Sets what a full cohort does, whether registering also checks in, the idle time, and the
    cohort's capacity in seats (None or empty: no capacity, the targets' attendance decides)."""
    try:
        idle = int(idle_seconds)
    except (TypeError, ValueError):
        raise TabletError("bad_setting", "idle time must be a number of seconds", "idle_seconds") from None
    if quota_mode not in QUOTA_MODES or not IDLE_RANGE[0] <= idle <= IDLE_RANGE[1]:
        raise TabletError("bad_setting", "quota mode refuse|waitlist, idle 15-600 s")
    seats = _capacity(capacity)
    with transaction(db):
        db["registration_settings"].upsert({"cohort_id": cohort_id, "quota_mode": quota_mode,
                                            "checkin_on_register": int(bool(checkin_on_register)),
                                            "idle_seconds": idle, "capacity": seats}, pk="cohort_id")
    return settings_of(db, cohort_id)


def _capacity(raw) -> int | None:
    text = "" if raw is None else str(raw).strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= CAPACITY_MAX:
        raise TabletError("bad_capacity", f"capacity must be a whole number of seats, 1 to {CAPACITY_MAX}", "capacity")
    return int(text)


# --- late work -----------------------------------------------------------------------------
# A tablet that cannot reach the laptop keeps its work with the laptop's own (signed) time of its
# last contact and how long after it, on the tablet's clock, it made each item. The laptop adds
# the two: the tablet's clock error cancels out, and the laptop checks what it knows of its own:
# nothing made before that contact, nor while the tablet was in fact still reaching the laptop
# (it then held a newer stamp), nor ahead of the laptop's clock, nor more than one session day
# back. A session that had closed when the tablet went quiet is behind its last contact, so
# nothing can land in it.

CONTACT_GAP = timedelta(minutes=3)  # contacts closer than this make one unbroken span
CONTACT_SLACK = timedelta(seconds=90)
CONTACT_WRITE_EVERY = timedelta(seconds=20)
CONTACT_KEPT = timedelta(days=3)


@dataclass(frozen=True)
class LateClaim:
    """What a device says of an act it kept while the laptop was unreachable: who it is, its last
    contact (the laptop's own time, from a stamp the laptop signed) and the time it counted after it."""

    device: str
    contact_at: datetime
    elapsed: timedelta


def note_contact(db, device: str, now: datetime | None = None) -> datetime:
    """Records that `device` reached the laptop at `now` (spans of unbroken contact); returns it."""
    now = now or now_utc()
    span = _one(db, "select rowid, last_at from contacts where device = ? order by last_at desc limit 1", [device])
    last = parse_iso(span["last_at"]) if span else None
    if last and now - last < CONTACT_WRITE_EVERY:
        return now  # recorded a moment ago: a tablet hammering its heartbeat writes nothing
    with transaction(db):
        if last and now - last <= CONTACT_GAP:
            db.execute("update contacts set last_at = ? where rowid = ?", [iso(now), span["rowid"]])
        else:
            db.execute("delete from contacts where last_at < ?", [iso(now - CONTACT_KEPT)])
            db.execute("insert into contacts (device, started_at, last_at) values (?, ?, ?)",
                       [device, iso(now), iso(now)])
    return now


def carried_time(db, claim: LateClaim, earliest_day: date, now: datetime | None = None) -> datetime:
    """The laptop's time of an act a device kept: its last contact plus the time it counted.

    Raises OfflineError("bad_time") when that time is before the contact, ahead of the laptop's
    clock (beyond CLOCK_SKEW), before the start of `earliest_day` (venue time), or inside a stretch
    when the device was still reaching the laptop after that contact.
    """
    now = now or now_utc()
    moment = claim.contact_at + claim.elapsed
    if claim.elapsed < timedelta(0):
        raise OfflineError("bad_time", "made before the device's last contact with the laptop", "at")
    if moment > now + CLOCK_SKEW:
        raise OfflineError("bad_time", f"{moment.isoformat()} is in the future", "at")
    if moment < datetime.combine(earliest_day, time(0), tzinfo=LOCAL_ZONE):
        raise OfflineError("bad_time", f"{moment.isoformat()} is more than one session day back", "at")
    if _in_contact(db, claim.device, claim.contact_at + CONTACT_SLACK, moment - CONTACT_SLACK):
        raise OfflineError("bad_time", "the device reached the laptop after the contact it shows", "at")
    return min(moment, now).astimezone(timezone.utc)


def _in_contact(db, device: str, after: datetime, before: datetime) -> bool:
    if after >= before:
        return False
    return bool(db.execute("select 1 from contacts where device = ? and last_at > ? and started_at < ? limit 1",
                           [device, iso(after), iso(before)]).fetchone())


def earliest_day(db, program_id: str | None = None, cohort_id: str | None = None,
                 now: datetime | None = None) -> date:
    """The oldest day late work may belong to: the last session day before today (of the cohort,
    else the program, else any), or today when there was none."""
    today = local_day(now)
    where, args = ("cohort_id = ?", [cohort_id]) if cohort_id else (
        ("program_id = ?", [program_id]) if program_id else ("1 = 1", []))
    row = db.execute(f"select max(day) from sessions where {where} and day < ?", [*args, today.isoformat()]).fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else today


def scan_time(db, at: datetime | None, late: LateClaim | None, program_id: str | None = None) -> datetime | None:
    """When a scan is recorded: a queued scan's carried time when it has a checked stamp, else `at`
    within bounds (not ahead of the laptop's clock, not more than one session day back), else
    None (now). Raises OfflineError("bad_time")."""
    if at is None and late is None:  # the door's own scan: now
        return None
    earliest = earliest_day(db, program_id=program_id)
    if late is not None:
        return carried_time(db, late, earliest)
    return bounded_time(at, earliest) if at is not None else None


def bounded_time(at, earliest: date | None, now: datetime | None = None) -> datetime:
    """The time an act was made (ISO text or datetime), checked against the bounds; UTC.

    Raises OfflineError("bad_time") for a time more than CLOCK_SKEW ahead of now or before the
    start of `earliest` in venue time (no lower bound when it is None).
    """
    now = now or now_utc()
    try:
        moment = at if isinstance(at, datetime) else parse_iso(str(at))
    except ValueError:
        raise OfflineError("bad_time", f"not an ISO 8601 time: {str(at)[:40]!r}", "at") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if moment > now + CLOCK_SKEW:
        raise OfflineError("bad_time", f"{moment.isoformat()} is in the future", "at")
    start = earliest and datetime.combine(earliest, time(0), tzinfo=LOCAL_ZONE)
    if start and moment < start:
        raise OfflineError("bad_time", f"{moment.isoformat()} is before {earliest.isoformat()}", "at")
    return min(moment, now).astimezone(timezone.utc)
