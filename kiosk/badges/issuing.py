"""Badges: issuing a participant's signed code, re-issuing (the old code is revoked)."""

from kiosk.badges.codes import make_code
from kiosk.clock import iso, new_id, now_utc
from kiosk.errors import KioskError
from kiosk.program.events import cohort_by_id, get_program
from kiosk.store import changes
from kiosk.store.db import commit_together, transaction
from kiosk.thai import ROLE_NAMES_TH, area_label, full_name
from kiosk.trust.programkeys import badge_key


class BadgeError(KioskError):
    """A badge that cannot be issued: the person is unknown, withdrawn or not admitted yet."""


def active_badge(db, participant_id: str) -> dict | None:
    rows = list(db.query("select * from badges where participant_id = ? and revoked_at is null"
                         " order by issued_at desc limit 1", [participant_id]))
    return rows[0] if rows else None


def issue_badge(db, participant: dict) -> str:
    """A new badge code for a participant; any earlier badge of theirs is revoked."""
    key = badge_key(db, participant["program_id"])
    now = iso(now_utc())
    for old in db.query("select id from badges where participant_id = ? and revoked_at is null",
                        [participant["id"]]):
        changes.write(db, participant["program_id"], "badges", old["id"], {"revoked_at": now})
    code = make_code(participant["program_id"], key)
    changes.write(db, participant["program_id"], "badges", new_id(), {
        "participant_id": participant["id"], "code": code, "issued_at": now, "revoked_at": None,
    })
    return code


def reissue_badge(db, participant_id: str) -> str:
    """A new badge code for someone who lost theirs; the old code is revoked in the same transaction."""
    return commit_together(db, lambda conn: _reissue(conn, participant_id))


def _reissue(db, participant_id: str) -> str:
    rows = list(db.query("select * from participants where id = ?", [participant_id]))
    if not rows:
        raise BadgeError("unknown_participant")
    if rows[0]["status"] in ("withdrawn", "waiting"):
        raise BadgeError("withdrawn" if rows[0]["status"] == "withdrawn" else "not_admitted")
    return issue_badge(db, rows[0])


def badge_card(participant: dict, code: str, cohort: dict | None, program: dict) -> dict:
    """What a printed badge shows: no national ID, no phone."""
    return {
        "code": code, "title": participant.get("title") or "", "first_name": participant["first_name"],
        "last_name": participant["last_name"], "full_name": full_name(participant),
        "role": participant["role"], "role_th": ROLE_NAMES_TH.get(participant["role"], ""),
        "position": participant.get("position") or "", "organization": participant.get("organization") or "",
        "area": area_label(participant.get("province_code"), participant.get("district_code"),
                           participant.get("subdistrict_code"), short=False),
        "cohort": cohort["title"] if cohort else "", "program_title": program["title"],
    }


def issue_missing_badges(db, cohort_id: str) -> int:
    """Issues a badge to every active person of a cohort who has none; returns how many."""
    missing = list(db.query(
        "select p.* from participants p where p.cohort_id = ? and p.status = 'active' and not exists"
        " (select 1 from badges b where b.participant_id = p.id and b.revoked_at is null)", [cohort_id]))
    with transaction(db):
        for person in missing:
            issue_badge(db, person)
    return len(missing)


def cohort_cards(db, cohort_id: str) -> list[dict]:
    """Badge cards for every active person of a cohort who holds a badge; reads only."""
    cohort = cohort_by_id(db, cohort_id)
    program = get_program(db, cohort["program_id"])
    people = db.query(
        "select p.*, b.code from participants p join badges b on b.participant_id = p.id"
        " and b.revoked_at is null where p.cohort_id = ? and p.status = 'active'"
        " order by p.role = 'participant' desc, p.district_code, p.first_name", [cohort_id])
    return [badge_card(person, person["code"], cohort, program) for person in people]


def missing_badges(db, cohort_id: str) -> int:
    """How many active people of a cohort hold no badge (they print once one is issued)."""
    return db.execute(
        "select count(*) from participants p where p.cohort_id = ? and p.status = 'active' and not exists"
        " (select 1 from badges b where b.participant_id = p.id and b.revoked_at is null)", [cohort_id]).fetchone()[0]
