"""What the privacy notice (พ.ร.บ. คุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562) promises, kept by the software.

* **Erasure on request** (§33): `erase_person` writes an `erasures` change; every replica that
  applies it keeps no personal value of the person (kiosk.store.changes.erase_rows): not in its
  tables, not in its change log, not in a bundle or a backup written after. Attendance stays,
  anonymous, so that totals and allowance sums already filed still add up. Signatures still verify:
  personal values are signed only through salted hashes (kiosk.trust.keys.sealed).
* **Retention**: each program has a retention date (`retention_date`: the coordinator's, else two
  years after its last session, never later). On that date every replica erases every person of
  the program by itself, without a network (`apply_retention`, at start and daily).
* **A person's own record** (§30): `person_record` holds everything kept about a person.
* **Consent on record**: how each person's data came in (`consent_fields`), with the notice's
  version (`notice_version`, which changes with the notice's text).

A limit: changes written before personal values were sealed (before migration 0010_privacy) carry
no salt; their signatures cover the values in clear. Erasing such a person blanks their rows
everywhere, but those old changes keep their values in the change logs (taking them out would
break every later signature of their origins), until the replica's database is retired. A design
where the erasure vouches for the old changes it rewrites (the eraser signing each rewritten
change's chain value) would close it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import date

from kiosk.badges.codes import certificate_code
from kiosk.clock import iso, local_day, now_utc
from kiosk.errors import N_, KioskError
from kiosk.i18n import translations
from kiosk.reports.certificates import allowance_rows, eligibility, parse_rule
from kiosk.reports.sources import kiosk_dataset
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.thai import clean_text, normalize_phone
from kiosk.trust.programkeys import badge_key

log = logging.getLogger("kiosk.privacy")
RETENTION_YEARS = 2
REASON_MAX = 300
# The notice shown on the registration tablet, paragraph by paragraph (English msgids; Thai in the
# catalog). Its version is a hash of these texts in both languages: a change of wording is a new version.
NOTICE = (
    (N_("Who keeps your data"), N_("The organizer of this training keeps your data on the laptop at this venue and "
                               "sends it to the program's central office.")),
    (N_("What for"), N_("To check you in, print your badge and certificate, pay the allowance, and report "
                    "attendance for the program.")),
    (N_("What"), N_("Your name, title, position, organization, area, phone, and the last four digits of your "
                "national ID (the full number is kept only as a keyed code that cannot be read back).")),
    (N_("How long"), N_("Until the program's retention date, at most 2 years after the training. Then every "
                    "laptop and the central office delete it by themselves. Backup copies are deleted within "
                    "%(backup_days)d days after that.")),
    (N_("Your rights"), N_("Ask the coordinator at this venue to show you everything kept about you, to correct "
                       "it, or to delete it. Deleting removes your name and contact from every laptop and the "
                       "central office at their next sync. Backup copies made before are deleted within "
                       "%(backup_days)d days; a sealed USB transfer file made before keeps them until the "
                       "coordinator deletes the file. Only anonymous counts of attendance remain.")),
)


class PrivacyError(KioskError):
    """A request about a person's data that cannot be done."""


def notice_version(translate=None) -> str:
    """The notice's version: 'v' + 8 hex digits of the hash of its texts (English and, given
    `translate`, Thai). Changing a word of the notice makes a new version."""
    texts = [part for paragraph in NOTICE for part in paragraph]
    if translate is not None:
        texts += [translate(text) for text in texts]
    return "v" + hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:8]


def current_notice_version() -> str:
    """The version of the notice the tablets show now: its English and Thai texts."""
    return notice_version(translations("th").gettext)


def consent_fields(via: str, version: str | None = None, by: str | None = None, at: str | None = None) -> dict:
    """How a person's data came in: on a tablet (with the notice's version), a roster import or a
    coordinator's form (by whom), and when."""
    return {"consent_via": via, "consent_notice": version, "consent_by": by, "consent_at": at or iso(now_utc())}


# --- erasure ------------------------------------------------------------------------------------


def erase_person(db, participant_id: str, reason: str, by: str, kind: str = "request") -> dict:
    """Erases a person everywhere, from this replica on: writes the `erasures` change (it travels
    like every change) and applies it here at once. `reason` is why (plain text, no personal data
    is asked for); returns the erasure."""
    reason = clean_text(reason)
    if not reason:
        raise PrivacyError("erasure_reason", "give the reason for the erasure", "reason")
    if len(reason) > REASON_MAX:
        raise PrivacyError("field_too_long", f"the reason has {len(reason)} characters, {REASON_MAX} at most", "reason")
    person = _person(db, participant_id)
    if person["erased_at"]:
        raise PrivacyError("already_erased", "this person was erased already")
    erasure = {"reason": reason, "erased_at": iso(now_utc()), "erased_by": by, "kind": kind}
    with transaction(db):
        changes.write(db, person["program_id"], "erasures", participant_id, erasure)
    log.info("erasure", extra={"act": "erasure", "participant_id": participant_id, "kind": kind})
    return {"id": participant_id, "program_id": person["program_id"], **erasure}


def erasure_of(db, participant_id: str) -> dict | None:
    """The erasure of a person held here (reason, when, by whom, request or retention), or None."""
    return _one(db, "select reason, erased_at, erased_by, kind from erasures where id = ?", [participant_id])


def find_person(db, ref: str) -> dict:
    """A person by id, badge code or phone (the CLI's PERSON); raises PrivacyError if none or several."""
    ref = (ref or "").strip()
    rows = list(db.query("select * from participants where id = ?", [ref]))
    if not rows:
        code = re.sub(r"[\s-]", "", ref).upper()
        rows = list(db.query("select p.* from participants p join badges b on b.participant_id = p.id"
                             " where b.code = ?", [code]))
    if not rows:
        phone = normalize_phone(ref) if re.fullmatch(r"[\d\s+-]{9,16}", ref) else None
        rows = list(db.query("select * from participants where phone = ?", [phone])) if phone else []
    if len(rows) != 1:
        raise PrivacyError("unknown_participant" if not rows else "ambiguous_person",
                           "no such person" if not rows else f"{len(rows)} people match: give the id")
    return rows[0]


def _person(db, participant_id: str) -> dict:
    rows = list(db.query("select * from participants where id = ?", [participant_id]))
    if not rows:
        raise PrivacyError("unknown_participant", "no such person")
    return rows[0]


# --- retention ----------------------------------------------------------------------------------


def latest_allowed(last_day: str | None) -> date | None:
    """The latest retention date the notice allows after a program's last session day: two years
    on (None while the program has no session)."""
    if not last_day:
        return None
    last = date.fromisoformat(last_day)
    try:
        return last.replace(year=last.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return last.replace(year=last.year + RETENTION_YEARS, day=28)


def retention_from(last_day: str | None, chosen: str | None) -> date | None:
    """When a program's people are erased: the coordinator's date (`chosen`), never later than
    the notice allows after its last session day."""
    found = [d for d in (date.fromisoformat(chosen) if chosen else None, latest_allowed(last_day)) if d]
    return min(found) if found else None


def _last_session_day(db, program_id: str) -> str | None:
    """The program's last session day, a session a coordinator removed left out."""
    return db.execute("select max(day) from sessions where program_id = ? and coalesce(status, 'active') != 'removed'",
                      [program_id]).fetchone()[0]


def latest_retention(db, program_id: str) -> date | None:
    """The latest retention date the notice allows for a program held here."""
    return latest_allowed(_last_session_day(db, program_id))


def retention_date(db, program: dict) -> date | None:
    """When the program's people are erased here (`retention_from`)."""
    return retention_from(_last_session_day(db, program["id"]), program.get("retention_until"))


def checked_retention(day, latest: date | None) -> date:
    """A retention date a coordinator chose, checked: a date, not later than the notice allows
    (`latest`), not in the past."""
    try:
        chosen = day if isinstance(day, date) else date.fromisoformat(str(day).strip())
    except ValueError:
        raise PrivacyError("bad_date", f"not a date: {str(day)[:20]!r}", "retention_until") from None
    if latest and chosen > latest:
        raise PrivacyError("retention_too_late", f"{chosen} is after {latest}", "retention_until")
    if chosen < local_day():
        raise PrivacyError("retention_past", f"{chosen} is in the past: erase the people instead", "retention_until")
    return chosen


def set_retention(db, program: dict, day) -> date:
    """Sets an earlier retention date; never later than the notice allows (two years after the
    program's last session)."""
    chosen = checked_retention(day, latest_retention(db, program["id"]))
    changes.write(db, program["id"], "programs", program["id"], {"retention_until": chosen.isoformat()})
    return chosen


def retention_plan(db, today: date | None = None) -> list[dict]:
    """Per program: its retention date, how many people it still holds (not erased), and whether
    the date has come (for the health page and `kiosk doctor`)."""
    today = today or local_day()
    out = []
    for program in db.query("select * from programs order by created_at, id"):
        when = retention_date(db, program)
        people = db.execute("select count(*) from participants where program_id = ? and erased_at is null",
                            [program["id"]]).fetchone()[0]
        out.append({"program_id": program["id"], "title": program["title"], "date": when, "people": people,
                    "due": bool(when and when <= today and people)})
    return out


def apply_retention(db, today: date | None = None) -> int:
    """Erases every person of each program whose retention date has come, on this replica, by
    itself (each replica does the same on the same date; no change travels); returns how many."""
    erased = 0
    for plan in retention_plan(db, today):
        if plan["due"]:
            erased += _erase_program(db, plan["program_id"])
    return erased


def _erase_program(db, program_id: str) -> int:
    stamp = iso(now_utc())
    ids = [r[0] for r in db.execute("select id from participants where program_id = ? and erased_at is null",
                                    [program_id])]
    with transaction(db):
        for participant_id in ids:
            db.execute("insert or ignore into erasures (id, program_id, reason, erased_at, erased_by, kind)"
                       " values (?, ?, 'retention', ?, 'retention', 'retention')", [participant_id, program_id, stamp])
            changes.erase_rows(db, participant_id, program_id, stamp)
    log.info("retention", extra={"act": "retention", "program_id": program_id, "erased": len(ids)})
    return len(ids)


# --- a person's own record (§30) -----------------------------------------------------------------

_PERSON_FIELDS = ("id", "program_id", "cohort_id", "title", "first_name", "last_name", "role", "position",
                  "organization", "province_code", "district_code", "subdistrict_code", "community", "phone",
                  "nid_last4", "status", "registered_via", "created_at", "erased_at")


def person_record(db, participant_id: str, synced_to: list[dict] | None = None) -> dict:
    """Everything this replica holds about a person, as plain data (JSON as it is, or the PDF of
    kiosk.documents.records): their fields, how their data came in, badges issued and revoked,
    scans, attendance, the certificate and allowance they earn, an erasure, and where and when
    their data was synced (`synced_to`: the remotes and what each acknowledged, from `sync`)."""
    person = _person(db, participant_id)
    program = next(iter(db.query("select * from programs where id = ?", [person["program_id"]])))
    return {
        "made_at": iso(now_utc()),
        "person": {k: person.get(k) for k in _PERSON_FIELDS},
        "national_id": ("kept only as a keyed code that cannot be read back" if person.get("nid_hash") else None),
        "program": {"id": program["id"], "title": program["title"],
                    "retention_date": _iso(retention_date(db, program))},
        "cohort": _one(db, "select number, title, starts_on, ends_on from cohorts where id = ?", [person["cohort_id"]]),
        "consent": {"via": person.get("consent_via") or person.get("registered_via"),
                    "notice_version": person.get("consent_notice"), "at": person.get("consent_at") or person.get("created_at"),
                    "by": person.get("consent_by")},
        "badges": list(db.query("select code, issued_at, revoked_at from badges where participant_id = ?"
                                " order by issued_at", [participant_id])),
        "scans": list(db.query("select s.at, x.day, x.slot, s.result, s.direction, s.device_id, s.operator, s.via"
                               " from scans s left join sessions x on x.id = s.session_id"
                               " where s.participant_id = ? order by s.at", [participant_id])),
        "attendance": list(db.query("select x.day, x.slot, a.first_at, a.last_out_at from attendance a"
                                    " join sessions x on x.id = a.session_id where a.participant_id = ?"
                                    " order by x.day, x.slot", [participant_id])),
        **_earned(db, person),
        "erasure": erasure_of(db, participant_id),
        "synced_to": _synced(db, person, synced_to or []),
    }


def _one(db, sql: str, args) -> dict | None:
    rows = list(db.query(sql, args))
    return rows[0] if rows else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _earned(db, person: dict) -> dict:
    """The certificate and allowance the person earns here (`earned`)."""
    return earned(kiosk_dataset(db, person["program_id"], person["cohort_id"]), person,
                  badge_key(db, person["program_id"]))


def earned(data, person: dict, key: bytes | None) -> dict:
    """The certificate (eligible or not, and its code signed with the program's `key`) and the
    allowance a person earns, from a report Dataset holding them (a kiosk's or central's)."""
    row = next((r for r in eligibility(data, parse_rule(data.program.get("certificate_rule")))
                if r["id"] == person["id"]), None)
    certificate = None
    if row is not None:
        certificate = {"eligible": row["eligible"], "attended": row["attended"], "sessions": row["sessions"],
                       "percent": row["percent"]}
        if row["eligible"] and not person.get("erased_at") and key:
            certificate["code"] = certificate_code(person["program_id"], person["id"], key)
    rate = data.program.get("allowance_rate")
    paid = allowance_rows(data, rate)["rows"] if rate is not None else []
    mine = next((r for r in paid if r["participant"]["id"] == person["id"]), None)
    allowance = {"days": mine["days"], "rate": str(mine["rate"]), "amount": str(mine["amount"])} if mine else None
    return {"certificate": certificate, "allowance": allowance}


def _synced(db, person: dict, remotes: list[dict]) -> list[dict]:
    """Each remote (central, a peer) and whether it acknowledged every change about the person,
    and when: a change is there once the remote's acknowledged vector reaches its seq."""
    mine = changes.heads_about(db, person["program_id"], person["id"]).items()
    out = []
    for remote in remotes:
        acked = remote.get("vector") or {}
        out.append({"kind": remote.get("kind"), "url": remote.get("url"), "at": remote.get("at"),
                    "holds_all": bool(mine) and all(acked.get(origin, 0) >= seq for origin, seq in mine)})
    return out




