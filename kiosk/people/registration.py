"""Walk-ins registering themselves on a paired tablet (kiosk.people.tablets): the form, duplicates,
quotas, keys.

The form: `form_fields` checks every field on its own so each bad field gets its message, then
`register_walk_in` looks for the person among those already registered (same national ID, same
phone, or a very similar Thai name in the same district), applies the cohort's quota, and
creates the person with a badge, once per submission key (a tablet resending after a lost
answer creates no one twice).

A public tablet never hands out an existing person: a match answers only which of the typed
facts match someone (never a name, initials, phone digits or a badge), and a person who is
already registered gets their badge at the desk, where staff see them and reprint it on the
door page. Lookups are counted: a tablet that keeps finding registered people pauses, and a
person looked up again and again can only be registered anew at the desk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from kiosk.badges.issuing import active_badge, badge_card
from kiosk.clock import LOCAL_ZONE, iso, local_day, now_utc, parse_iso
from kiosk.door.checkin import CheckinError, CheckinResult, check_in
from kiosk.errors import KioskError, PeopleError
from kiosk.people.participants import ValidFields, get_participant, participant_fields, register_participant
from kiosk.people.privacy import consent_fields, current_notice_version
from kiosk.people.tablets import (
    LateClaim,
    OfflineError,
    carried_time,
    earliest_day,
    is_paused,
    locked_people,
    note_lookups,
    settings_of,
    tablet_roles,
)
from kiosk.program.events import cohort_by_id, get_program
from kiosk.store.db import transaction
from kiosk.thai import (
    NAME_MAX,
    ROLES,
    area_from_codes,
    national_id_fields,
    normalize_phone,
    plain_text,
    similar_names,
)

# The titles the form offers first; anything else is typed under "other".
FORM_TITLES = ("นาย", "นาง", "นางสาว", "ว่าที่ร้อยตรี", "ว่าที่ร้อยตรีหญิง", "ดร.", "ร.ต.อ.", "พ.ต.ท.", "พ.ต.อ.",
               "จ.ส.อ.", "พระ")
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MATCHES = ("national_id", "phone", "name")


class RegistrationError(KioskError):
    """A registration that cannot be made now.

    `errors` maps each bad field to its PeopleError (reason invalid_form); `matches` names which
    typed facts match someone already registered (national_id, phone, name), nothing of them.
    """

    def __init__(self, reason: str, message: str | None = None, field: str | None = None, *,
                 errors: dict | None = None, matches: list | None = None):
        super().__init__(reason, message, field)
        self.errors = errors or {}
        self.matches = matches or []


@dataclass
class Registration:
    """What a submission came to: `status` created or waiting (no badge yet)."""

    status: str
    person: dict
    code: str | None
    key: str
    made_at: str
    replayed: bool = False
    checkin: CheckinResult | None = field(default=None)
    # False for a form kept on a tablet whose time the laptop could not vouch for: no check-in then
    timed: bool = True


def _one(db, sql: str, args) -> dict | None:
    rows = list(db.query(sql, args))
    return rows[0] if rows else None


# --- the form ---------------------------------------------------------------------------------

_NAMES = ("first_name", "last_name")
_TEXTS = ("title", "position", "organization")


def form_fields(data: dict, roles=ROLES) -> ValidFields:
    """The participant fields of a registration form, every field checked.

    `data` holds the texts, `role` (one of `roles`, those the tablet offers), the area as geothai
    codes (`province`, `district`, `subdistrict`), `phone`, an optional `national_id` and `pdpa`
    (the notice accepted). Raises RegistrationError("invalid_form") whose `errors` name every bad field.
    """
    errors: dict[str, PeopleError] = {}

    def check(name, rule):
        try:
            return rule()
        except PeopleError as exc:
            errors.setdefault(exc.field or name, exc)

    texts = {n: check(n, lambda n=n: _name(data.get(n), n)) for n in _NAMES}
    texts.update({n: check(n, lambda n=n: plain_text(data.get(n), n)) for n in _TEXTS})
    area = check("province", lambda: _area(data))
    check("phone", lambda: _phone(data.get("phone")))
    check("national_id", lambda: national_id_fields(_text(data.get("national_id"))[:40]))
    check("role", lambda: _role(data.get("role"), roles))
    check("pdpa", lambda: _accepted(data.get("pdpa")))
    fields = None
    if not errors:
        fields = check("first_name", lambda: participant_fields(
            {**data, **texts, "province": "", "district": "", "subdistrict": ""}))
    if errors:
        raise RegistrationError("invalid_form", "some fields need attention", errors=errors)
    fields.update(province_code=area.province_code, district_code=area.district_code,
                  subdistrict_code=area.subdistrict_code)
    return fields


def _text(value) -> str:
    return "" if value is None else str(value)


def _name(raw, name: str) -> str:
    text = plain_text(raw, name, NAME_MAX)
    if not text:
        raise PeopleError("missing_name", f"{name} is required", name)
    return text


def _area(data: dict):
    province, district = _text(data.get("province"))[:10], _text(data.get("district"))[:10]
    if not province:
        raise PeopleError("missing_area", "choose the province", "province")
    area = area_from_codes(province, district, _text(data.get("subdistrict"))[:10])
    if not district:
        raise PeopleError("missing_area", "choose the district", "district")
    return area


def _phone(raw) -> str:
    text = plain_text(_text(raw)[:40], "phone", 40)
    if not text:
        raise PeopleError("missing_phone", "phone number is required", "phone")
    return normalize_phone(text)


def _role(raw, offered) -> str:
    role = _text(raw) or offered[0]
    if role not in ROLES:
        raise PeopleError("unknown_role", f"unknown role {role[:20]!r}", "role")
    if role not in offered:  # a walk-in does not make themselves a speaker
        raise PeopleError("role_not_offered", f"this tablet does not register {role}", "role")
    return role


def _accepted(raw) -> None:
    if raw not in (True, "1", "on", "yes", "true"):
        raise PeopleError("pdpa_required", "the personal data notice was not accepted", "pdpa")


# --- duplicates -------------------------------------------------------------------------------


def find_matches(db, program_id: str, fields: dict) -> list[dict]:
    """People of the program (not withdrawn) who may be this one, each with `match`:
    national_id, phone, or name (very similar name in the same district)."""
    found: dict[str, dict] = {}
    live = "program_id = ? and status != 'withdrawn'"
    for match, column in (("national_id", "nid_hash"), ("phone", "phone")):
        if fields.get(column):
            for person in db.query(f"select * from participants where {live} and {column} = ?",
                                   [program_id, fields[column]]):
                found.setdefault(person["id"], {**person, "match": match})
    if fields.get("district_code"):
        for person in db.query(f"select * from participants where {live} and district_code = ?",
                               [program_id, fields["district_code"]]):
            if person["id"] not in found and similar_names(fields["first_name"], fields["last_name"],
                                                           person["first_name"], person["last_name"]):
                found[person["id"]] = {**person, "match": "name"}
    return sorted(found.values(), key=lambda p: MATCHES.index(p["match"]))


def match_kinds(matches: list[dict]) -> list[str]:
    """Which of the typed facts matched someone: all a tablet may be told."""
    return sorted({m["match"] for m in matches}, key=MATCHES.index)


# --- when a cohort is full ---------------------------------------------------------------------
# Not the roster: a cohort whose 180 are all registered but 7 have arrived still has room. Full is
# either the seats the coordinator set (people holding a place) or a target of the cohort met by
# the people present in today's session.


def full_because(db, cohort_id: str, role: str, now: datetime | None = None) -> str | None:
    """Why a walk-in of `role` finds the cohort full: "capacity" (the coordinator's seats are all
    taken by active people), "attendance" (a target of the cohort, for everyone or this role, is
    met by the people present in the session open now, or last opened today), or None."""
    capacity = settings_of(db, cohort_id)["capacity"]
    if capacity and db.execute("select count(*) from participants where cohort_id = ? and status = 'active'",
                               [cohort_id]).fetchone()[0] >= capacity:
        return "capacity"
    session = _session_now(db, cohort_id, now or now_utc())
    if session is None:
        return None
    for target in db.query("select role, expected from targets where cohort_id = ? and expected > 0"
                           " and coalesce(area_code, '') = ''", [cohort_id]):
        if target["role"] in (None, "", role) and _present(db, session, target["role"]) >= target["expected"]:
            return "attendance"
    return None


def walk_in_state(db, tablet: dict) -> dict:
    """What the tablet shows before its form: full (for every role it offers), why, and what a
    full cohort does (refuse or waiting list)."""
    reasons = [full_because(db, tablet["cohort_id"], role) for role in tablet_roles(tablet)]
    full = all(reasons)
    return {"full": full, "why": reasons[0] if full else None,
            "mode": settings_of(db, tablet["cohort_id"])["quota_mode"]}


def _session_now(db, cohort_id: str, now: datetime) -> str | None:
    local = now.astimezone(LOCAL_ZONE)
    row = db.execute("select id from sessions where cohort_id = ? and day = ? and opens_at <= ?"
                     " order by opens_at desc limit 1",
                     [cohort_id, local.date().isoformat(), local.strftime("%H:%M")]).fetchone()
    return row[0] if row else None


def _present(db, session_id: str, role: str | None) -> int:
    sql = ("select count(*) from attendance a join participants p on p.id = a.participant_id"
           " where a.session_id = ?")
    return db.execute(sql + (" and p.role = ?" if role else ""), [session_id, *([role] if role else [])]).fetchone()[0]


# --- registering ------------------------------------------------------------------------------


def check_key(key) -> str:
    """A submission (idempotency) key: 16 to 64 letters, digits, '-' or '_'."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise RegistrationError("bad_idempotency_key", "key must be 16-64 letters, digits, - or _", "key")
    return key


def register_walk_in(db, tablet: dict, data: dict, key: str, *, late: LateClaim | None = None,
                     confirm_new: bool = False, deferred: bool = False) -> Registration:
    """Registers the person a tablet's form describes, once per `key`.

    Someone already registered with the same national ID raises RegistrationError
    (national_id_taken); the same phone or a similar name in the same district raises
    possible_duplicate unless `confirm_new` (the person said "not me") or `deferred` (a form saved
    on the tablet while offline, with nobody left to ask). Neither answer carries anything of the
    person found; each counts as a lookup (kiosk.people.tablets lockouts): a paused tablet is
    refused (tablet_paused), and a person looked up too often is not registered anew here
    (ask_at_desk). A full cohort (`full_because`) refuses (quota_full) or puts them on the waiting
    list, as the coordinator chose. Nothing is written unless a person is created.

    A deferred form carries the time it was made only as `late` says and within the bounds the
    laptop checks (kiosk.people.tablets.carried_time); otherwise it takes the laptop's time of
    arrival and checks no one in.
    """
    key = check_key(key)
    if is_paused(db, tablet):
        raise RegistrationError("tablet_paused")
    cohort = cohort_by_id(db, tablet["cohort_id"])
    moment, timed = _when(db, cohort, late if deferred else None)
    fields = form_fields(data, tablet_roles(tablet))
    with transaction(db):
        earlier = _replay(db, tablet, key)
        if earlier:
            return earlier
        matches = find_matches(db, cohort["program_id"], fields)
        refusal = _match_refusal(db, matches, confirm_new or deferred)
        if refusal is None:
            return replace(_create(db, tablet, cohort, fields, key, moment), timed=timed or not deferred)
    note_lookups(db, tablet["id"], [m["id"] for m in matches])
    raise refusal


def _match_refusal(db, matches: list[dict], new: bool) -> RegistrationError | None:
    """Why the people found stop this registration, or None when it may go on."""
    if not matches:
        return None
    kinds = match_kinds(matches)
    if "national_id" in kinds:  # one ID, one person: "not me" cannot be true
        return RegistrationError("national_id_taken", matches=["national_id"])
    if locked_people(db, [m["id"] for m in matches]):
        return RegistrationError("ask_at_desk")
    return None if new else RegistrationError("possible_duplicate", matches=kinds)


def _create(db, tablet: dict, cohort: dict, fields: dict, key: str, moment: str) -> Registration:
    status = "active"
    full = full_because(db, cohort["id"], fields["role"])
    if full:
        if settings_of(db, cohort["id"])["quota_mode"] != "waitlist":
            raise RegistrationError("quota_full", f"the cohort is full ({full})")
        status = "waiting"
    person = register_participant(db, cohort, fields, issue_badge=status == "active", via="walk_in",
                                  at=moment, status=status,
                                  consent=consent_fields("tablet", current_notice_version(), at=moment))
    _remember(db, tablet, key, person["id"], "created" if status == "active" else "waiting", moment)
    return Registration("created" if status == "active" else "waiting", person, person["code"], key, moment)


def _when(db, cohort: dict, late: LateClaim | None) -> tuple[str, bool]:
    """(time, carried) of a registration: a kept form's own time when the laptop can vouch for it,
    else the laptop's time now (a walk-in is never lost over a time)."""
    if late is not None:
        try:
            return iso(carried_time(db, late, earliest_day(db, cohort_id=cohort["id"]))), True
        except OfflineError:
            pass
    return iso(now_utc()), False


def _remember(db, tablet: dict, key: str, participant_id: str, status: str, moment: str) -> None:
    db.execute("insert into registration_keys (tablet_id, key, participant_id, status, made_at, created_at)"
               " values (?, ?, ?, ?, ?, ?)", [tablet["id"], key, participant_id, status, moment, iso(now_utc())])


def _replay(db, tablet: dict, key: str) -> Registration | None:
    """The first outcome of a key already used by this tablet."""
    row = _one(db, "select * from registration_keys where tablet_id = ? and key = ?", [tablet["id"], key])
    if not row:
        return None
    if row["status"] == "existing":  # a key that once took someone's badge: that door is closed
        raise RegistrationError("choice_expired")
    person = get_participant(db, row["participant_id"])
    badge = active_badge(db, person["id"])
    status = "waiting" if person["status"] == "waiting" else row["status"]
    return Registration(status, person, badge["code"] if badge else None, key, row["made_at"], replayed=True)


def check_in_now(db, tablet: dict, registration: Registration) -> CheckinResult | None:
    """Checks the new person in to the session open when they registered, where the coordinator asked.

    Runs after the registration committed (check_in takes its own turn at the write lock);
    the nonce comes from the submission key, so a resend checks no one in twice.
    """
    if not (registration.code and registration.timed) or local_day(parse_iso(registration.made_at)) != local_day():
        return None  # never into a past day, never at a time the laptop could not vouch for
    if not settings_of(db, tablet["cohort_id"])["checkin_on_register"]:
        return None
    try:
        return check_in(db, code=registration.code, at=parse_iso(registration.made_at),
                        operator=f"tablet {tablet['label']}", nonce=f"register-{tablet['id']}-{registration.key}")
    except CheckinError:
        return None


def badge_view(db, registration: Registration) -> dict | None:
    """The badge card a registration shows on screen (no national ID, no phone), or None; `ref` is
    the badge's record id, for a link to its PDF that holds no code."""
    if not registration.code:
        return None
    person = registration.person
    cohort = cohort_by_id(db, person["cohort_id"])
    badge = _one(db, "select id from badges where code = ?", [registration.code])
    return {**badge_card(person, registration.code, cohort, get_program(db, person["program_id"])), "ref": badge["id"]}


def current_card(db, badge_id: str) -> dict | None:
    """The badge card of a badge still in use, by its record id; None once replaced, or unknown."""
    badge = _one(db, "select * from badges where id = ? and revoked_at is null", [badge_id])
    person = badge and get_participant(db, badge["participant_id"])
    if not person or person["status"] != "active":
        return None
    return badge_card(person, badge["code"], cohort_by_id(db, person["cohort_id"]),
                      get_program(db, person["program_id"]))
