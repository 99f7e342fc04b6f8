"""Participants: validating, registering and editing them, the one place they are written, and search.

The Thai text rules they follow (names, titles, phones, national IDs, areas) live in `kiosk.thai`.
"""

import logging
import re

from kiosk.badges import issuing as issuance
from kiosk.clock import iso, local_day, new_id, now_utc
from kiosk.errors import PeopleError
from kiosk.store import changes
from kiosk.store.db import device_id, transaction
from kiosk.thai import (
    NAME_MAX,
    ROLE_NAMES_TH,
    ROLES,
    clean_text,
    national_id_fields,
    normalize_phone,
    normalize_title,
    plain_text,
    reject_formula,
    resolve_area,
    split_title,
)

log = logging.getLogger("kiosk.people")

ROLE_ALIASES = {
    **{r: r for r in ROLES}, **{v: k for k, v in ROLE_NAMES_TH.items()},
    "ผู้เข้ารับการอบรม": "participant", "ผู้เข้าร่วม": "participant", "ผู้สังเกตุการณ์": "observer",
    "เจ้าหน้าที่ดำเนินการ": "staff", "trainee": "participant", "attendee": "participant",
}


def normalize_role(role: str | None) -> str:
    """A role code from Thai or English text; empty means participant."""
    key = clean_text(role).lower()
    if not key:
        return "participant"
    if key not in ROLE_ALIASES:
        raise PeopleError("unknown_role", f"unknown role {role!r}", "role")
    return ROLE_ALIASES[key]


class ValidFields(dict):
    """Participant fields that passed `participant_fields`: registering them needs no second check."""


def participant_fields(data: dict) -> ValidFields:
    """Validated, normalised participant fields from raw input (a form, a roster row)."""
    title = normalize_title(plain_text(data.get("title"), "title"))
    first = plain_text(data.get("first_name"), "first_name", NAME_MAX)
    last = plain_text(data.get("last_name"), "last_name", NAME_MAX)
    if not title and first:
        title, first = split_title(first)
    if not first:
        raise PeopleError("missing_name", "first name is required", "first_name")
    if not last:
        raise PeopleError("missing_name", "last name is required", "last_name")
    texts = {name: plain_text(data.get(name), name) for name in ("position", "organization", "community")}
    for value in (title, first, last, *texts.values()):
        reject_formula(value)
    area = resolve_area(data.get("province", ""), data.get("district", ""), data.get("subdistrict", ""))
    return ValidFields({
        "title": title, "first_name": first, "last_name": last,
        "role": normalize_role(data.get("role")),
        "position": texts["position"], "organization": texts["organization"],
        "province_code": area.province_code, "district_code": area.district_code,
        "subdistrict_code": area.subdistrict_code, "community": texts["community"],
        "phone": normalize_phone(data.get("phone")),
        **national_id_fields(data.get("national_id")),
    })


def register_participant(db, cohort: dict, fields: dict, *, issue_badge: bool = True,
                         via: str = "roster", at: str | None = None, status: str = "active",
                         consent: dict | None = None) -> dict:
    """Creates a person in `cohort`, with a badge unless asked not to, in one transaction.

    `fields` is raw input (a form, a roster row), validated here, or the `ValidFields` that
    `participant_fields` returned. Returns the new person's fields with `id`, `program_id`,
    `cohort_id` and the badge `code` (None without a badge). `at` is when the person registered
    (a tablet that was offline sends it later), default now; `status` "waiting" puts them on the
    cohort's waiting list. `consent` says how the data came in (kiosk.people.privacy.consent_fields;
    by default `via`, at `at`). Raises PeopleError; nothing is written then.
    """
    program_id = cohort["program_id"]
    if not isinstance(fields, ValidFields):
        fields = participant_fields(fields)
    with transaction(db):
        participant_id = add_participant(db, program_id, cohort["id"], fields, via, at=at, status=status,
                                         consent=consent)
        person = {**fields, "id": participant_id, "program_id": program_id, "cohort_id": cohort["id"]}
        person["code"] = issuance.issue_badge(db, person) if issue_badge else None
    log.info("registration", extra={"act": "registration", "participant_id": participant_id, "via": via,
                                    "badge": issue_badge})
    return person


def add_participant(db, program_id: str, cohort_id: str | None, fields: dict, via: str, *,
                    at: str | None = None, status: str = "active", consent: dict | None = None) -> str:
    """Creates a participant from validated fields, with how their data came in; returns the new id."""
    participant_id = new_id()
    created = at or iso(now_utc())
    changes.write(db, program_id, "participants", participant_id, {
        **fields, "cohort_id": cohort_id, "status": status, "registered_via": via, "created_at": created,
        **(consent or {"consent_via": via, "consent_at": created}),
    })
    return participant_id


def update_participant(db, participant: dict, fields: dict) -> list[str]:
    """Writes only the fields that changed; returns their names. An erased person's data is not
    written again ("already_erased")."""
    if participant.get("erased_at"):
        raise PeopleError("already_erased", "this person's data was erased")
    changed = {k: v for k, v in fields.items() if participant.get(k) != v}
    if changed:
        changes.write(db, participant["program_id"], "participants", participant["id"], changed)
    return sorted(changed)


def edit_participant(db, participant: dict, data: dict) -> list[str]:
    """Validates an edit form like a roster row and writes only what changed; returns the fields.

    A national ID left empty keeps the stored one: it is never shown, so it cannot be retyped.
    """
    fields = participant_fields(data)
    if not clean_text(data.get("national_id")):
        fields.pop("nid_hash"), fields.pop("nid_last4")
    return update_participant(db, participant, fields)


def set_status(db, participant: dict, status: str) -> bool:
    """Withdraws ('withdrawn') or reinstates ('active') a participant; False if already so."""
    if status not in ("active", "withdrawn"):
        raise PeopleError("bad_status", "status is active or withdrawn", "status")
    return bool(update_participant(db, participant, {"status": status}))


def admit(db, participant: dict) -> str:
    """Takes a person off the waiting list: active, with a badge, in one transaction; returns the code."""
    if participant["status"] != "waiting":
        raise PeopleError("bad_status", "only a person on the waiting list can be admitted", "status")
    with transaction(db):
        update_participant(db, participant, {"status": "active"})
        return issuance.issue_badge(db, participant)


REASON_MAX = 300


def mark_attended(db, participant: dict, session: dict, by: str, reason: str, at=None) -> str:
    """A coordinator counts a person present at a session (a forgotten badge, a scanner that was
    down): a check-in by hand that records who, when and why; returns its scan id."""
    _check_correction(db, participant, session, at)
    if _attended(db, participant, session):
        raise PeopleError("already_attended", "already counted present at this session")
    if participant["status"] != "active":
        raise PeopleError("not_active", f"status is {participant['status']}", "status")
    return _correction(db, participant, session, "checked_in", by, reason, at)


def undo_checkin(db, participant: dict, session: dict, by: str, reason: str, at=None) -> str:
    """A coordinator cancels a person's check-in to a session (scanned by mistake, a badge used by
    someone else): every check-in of theirs to it before now stops counting; returns the scan id.
    A later scan at the door counts again."""
    _check_correction(db, participant, session, at)
    if not _attended(db, participant, session):
        raise PeopleError("not_checked_in", "not checked in to this session")
    return _correction(db, participant, session, "undone", by, reason, at)


def _check_correction(db, participant: dict, session: dict, at) -> None:
    if session.get("cohort_id") != participant.get("cohort_id") or session.get("status") == "removed":
        raise PeopleError("wrong_cohort", "the session is not one of the person's cohort")
    if session["day"] > local_day(at).isoformat():
        raise PeopleError("session_not_started", f"the session is on {session['day']}")


def _attended(db, participant: dict, session: dict) -> bool:
    return bool(db.execute("select 1 from attendance where participant_id = ? and session_id = ?",
                           [participant["id"], session["id"]]).fetchone())


def _correction(db, participant: dict, session: dict, result: str, by: str, reason: str, at) -> str:
    """Stores a correction as a scan (via "manual"): it syncs and derives attendance like any scan."""
    why = plain_text(reason, "reason", REASON_MAX)
    if not why:
        raise PeopleError("missing_reason", "say why attendance is corrected", "reason")
    reject_formula(why)
    scan_id = new_id()
    changes.write(db, participant["program_id"], "scans", scan_id, {
        "participant_id": participant["id"], "session_id": session["id"], "code": None, "result": result,
        "direction": "in", "device_id": device_id(db), "operator": clean_text(by)[:80] or None,
        "at": iso(at or now_utc()), "nonce": scan_id, "via": "manual", "note": why,
    })
    log.info("attendance corrected", extra={"act": "correction", "participant_id": participant["id"],
                                            "session_id": session["id"], "result": result})
    return scan_id


def corrections_of(db, participant_id: str) -> list[dict]:
    """A person's attendance corrections by hand, newest first: the session, what, who, when, why."""
    return list(db.query(
        "select x.id, x.result, x.operator, x.at, x.note, s.day, s.slot, s.opens_at, s.closes_at from scans x"
        " join sessions s on s.id = x.session_id where x.participant_id = ? and x.via = 'manual'"
        " order by x.at desc, x.id desc", [participant_id]))


def get_participant(db, participant_id: str) -> dict | None:
    """One participant row, or None."""
    rows = list(db.query("select * from participants where id = ?", [participant_id]))
    return rows[0] if rows else None


def _like_pattern(text: str) -> str:
    """`%text%` for LIKE ... ESCAPE '\\': the user's % and _ are plain characters, not wildcards."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def search(db, program_id: str | None, query: str, limit: int = 20) -> list[dict]:
    """Participants whose name (any part, Thai or Latin) contains the query, or whose phone is it.

    A phone matches only on the whole number or its last 4 digits: a substring search would let
    anyone at the door rebuild a full number a digit at a time.
    """
    q = clean_text(query)
    if len(q) < 2:
        return []
    digits = re.sub(r"\D", "", q)
    like = _like_pattern(q.lower())
    sql = ("select * from participants where (lower(first_name || ' ' || last_name) like ? escape '\\'"
           " or lower(title || first_name || ' ' || last_name) like ? escape '\\'"
           " or lower(last_name) like ? escape '\\'")
    args = [like, like, like]
    if len(digits) >= 4 and digits == q.replace("-", "").replace(" ", ""):
        sql += " or phone = ? or (length(?) = 4 and substr(phone, -4) = ?)"
        args += [_whole_phone(digits), digits, digits]
    sql += ")"
    if program_id:
        sql += " and program_id = ?"
        args.append(program_id)
    sql += " order by first_name, last_name limit ?"
    args.append(limit)
    return list(db.query(sql, args))


def _whole_phone(digits: str) -> str:
    """Typed digits as a stored phone (+66 read as 0), or the digits as they are."""
    try:
        return normalize_phone(digits) or digits
    except PeopleError:
        return digits
