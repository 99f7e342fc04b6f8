"""What the privacy notice promises, kept on central as on every kiosk (kiosk.people.privacy).

* An `erasures` change (from any replica, or made here by `erase_person`) makes central keep no
  personal value of the person: their typed row is blanked (`erased_at` set), their badges
  revoked, and every change about them in the log keeps only the hashes its signature covers
  (kiosk.trust.keys.erase_values). A change about them that arrives later (an old bundle, a kiosk
  offline since) is stored the same way. Attendance and the area counts stay, anonymous.
* Each program's retention date (the coordinator's, else two years after its last session):
  `apply_retention` erases a program's people on that date, here, by itself.
* `person_record`: everything central holds about a person (kiosk.documents.records prints it).
"""

from __future__ import annotations

import json
import re
from datetime import date

from sqlalchemy import func, select, update

from kiosk.clock import iso, local_day, now_utc
from kiosk.people.privacy import PrivacyError, checked_retention, latest_allowed, retention_from
from kiosk.thai import clean_text, normalize_phone
from kiosk.trust import keys
from sync.central.storage.tables import (
    PEOPLE,
    attendance,
    badges,
    changes,
    cohorts,
    erasures,
    participants,
    programs,
    scans,
    sessions,
)
from sync.central.storage.tables import dump as _dump

PERSONAL = keys.PERSONAL["participants"]
# The personal fields central's typed row holds (it never kept phones or ID hashes).
ROW_FIELDS = tuple(c.name for c in participants.columns if c.name in PERSONAL)
CHUNK = 2000


class Privacy:
    """Erasure, retention and a person's record (a part of Storage)."""

    def _erased_ids(self, conn, program_id: str, ids) -> set[str]:
        """Of `ids`, the people erased here."""
        ids = sorted(set(ids))
        if not ids:
            return set()
        found = set()
        for start in range(0, len(ids), CHUNK):
            found |= {r[0] for r in conn.execute(select(erasures.c.id).where(
                erasures.c.program_id == program_id, self.among(erasures.c.id, ids[start:start + CHUNK])))}
        return found

    def _keep_erased(self, conn, program_id: str, fresh: list[dict]) -> tuple[list[dict], set[str]]:
        """The batch as central keeps it: a change about a person erased here, or by an erasure in
        the same batch, without their personal values; and the people of the batch erased before."""
        named = [c["id"] for c in fresh if c["entity"] == "participants"]
        if not named:
            return fresh, set()
        before = self._erased_ids(conn, program_id, named)
        gone = before | {c["id"] for c in fresh if c["entity"] == "erasures"}
        return [_erased(c) if c["entity"] == "participants" and c["id"] in gone else c for c in fresh], before

    def _apply_erasures(self, conn, program_id: str, fresh: list[dict], before: set[str]) -> None:
        """The erasures of a stored batch: each person's values go from the rows and the log; a
        person's row that arrives after their erasure (`before`) is marked erased too."""
        for change in fresh:
            if change["entity"] == "erasures":
                fields = change["payload"]
                self._erase(conn, program_id, change["id"], fields.get("erased_at") or iso(now_utc()),
                            {k: fields.get(k) for k in ("reason", "erased_by", "kind")})
        self._mark_rows(conn, program_id, before)

    def _erase(self, conn, program_id: str, person_id: str, stamp: str, about: dict) -> None:
        conn.execute(self.insert(erasures).values(program_id=program_id, id=person_id, erased_at=stamp,
                                                  reason=about.get("reason"), erased_by=about.get("erased_by"),
                                                  kind=about.get("kind") or "request")
                     .on_conflict_do_nothing(index_elements=["program_id", "id"]))
        self._mark_rows(conn, program_id, {person_id}, stamp)
        conn.execute(update(badges).where(badges.c.program_id == program_id, badges.c.participant_id == person_id,
                                          badges.c.revoked_at.is_(None)).values(revoked_at=stamp))
        held = conn.execute(select(changes.c.origin, changes.c.seq, changes.c.payload).where(
            PEOPLE, changes.c.program_id == program_id, changes.c.entity_id == person_id))
        for origin, seq, text in held.all():
            conn.execute(update(changes).where(changes.c.program_id == program_id, changes.c.origin == origin,
                                               changes.c.seq == seq)
                         .values(payload=_dump(keys.erase_values("participants", json.loads(text)))))

    def _mark_rows(self, conn, program_id: str, ids: set[str], stamp: str | None = None) -> None:
        if not ids:
            return
        conn.execute(update(participants).where(participants.c.program_id == program_id,
                                                self.among(participants.c.id, sorted(ids)))
                     .values(**dict.fromkeys(ROW_FIELDS), erased_at=func.coalesce(participants.c.erased_at,
                                                                                   stamp or iso(now_utc()))))

    def erase_person(self, participant_id: str, reason: str, by: str) -> dict:
        """Erases a person held here: an `erasures` change in central's name, which every kiosk of the
        program applies at its next sync."""
        row = self.person_row(participant_id)
        if row is None:
            raise PrivacyError("unknown_participant", "no such person on this server")
        if row["erased_at"]:
            raise PrivacyError("already_erased", "this person was erased already")
        reason = clean_text(reason)
        if not reason:
            raise PrivacyError("erasure_reason", "give the reason for the erasure", "reason")
        fields = {"reason": reason[:300], "erased_at": iso(now_utc()), "erased_by": by, "kind": "request"}
        self.originate(row["program_id"], "erasures", participant_id, fields)
        return {"id": participant_id, "program_id": row["program_id"], **fields}

    def person_row(self, participant_id: str) -> dict | None:
        """A person's typed row (any program), or None."""
        with self.engine.connect() as conn:
            found = conn.execute(select(participants).where(participants.c.id == participant_id,
                                                            participants.c.clocks != "{}")).mappings().first()
        return dict(found) if found else None

    def find_person(self, ref: str) -> dict:
        """A person by id, badge code or phone (the CLI's PERSON), as kiosk.people.privacy.find_person.
        Central's typed rows keep neither codes nor phones: those are looked up in the change log,
        whose values of an erased person are hashes and so never match."""
        ref = (ref or "").strip()
        found = self.person_row(ref)
        if found:
            return found
        code = re.sub(r"[\s-]", "", ref).upper()
        ids = self._named_in_log("badges", "code", code, "participant_id") if code.isalnum() else set()
        if not ids and re.fullmatch(r"[\d\s+-]{9,16}", ref) and normalize_phone(ref):
            ids = self._named_in_log("participants", "phone", normalize_phone(ref), None)
        rows = [r for r in (self.person_row(i) for i in sorted(ids)) if r]
        if len(rows) != 1:
            raise PrivacyError("unknown_participant" if not rows else "ambiguous_person",
                               "no such person" if not rows else f"{len(rows)} people match: give the id")
        return rows[0]

    def _named_in_log(self, entity: str, field: str, value: str, pointer: str | None) -> set[str]:
        """The people whose changes of `entity` had `field` = `value`: the change's row id, or the
        id its `pointer` field names."""
        text = f"%{_dump(field)}:{_dump(value)}%"
        with self.engine.connect() as conn:
            rows = conn.execute(select(changes.c.entity_id, changes.c.payload).where(
                changes.c.entity == entity, changes.c.payload.like(text))).all()
        ids = set()
        for entity_id, payload in rows:
            fields = json.loads(payload)
            if fields.get(field) == value:
                ids.add(fields.get(pointer) if pointer else entity_id)
        return ids - {None}

    # --- retention -------------------------------------------------------------------------------

    def set_retention(self, program_id: str, day) -> date:
        """An earlier retention date for a program, in central's name (every kiosk of the program
        keeps it after its next sync); never later than the notice allows."""
        with self.engine.connect() as conn:
            known = conn.execute(select(programs.c.id).where(programs.c.id == program_id)).first()
            last = _last_days(conn, program_id).get(program_id)
        if known is None:
            raise PrivacyError("unknown_program", f"no program {program_id} on this server")
        chosen = checked_retention(day, latest_allowed(last))
        self.originate(program_id, "programs", program_id, {"retention_until": chosen.isoformat()})
        return chosen

    def retention_plan(self, today: date | None = None) -> list[dict]:
        """Per program: its retention date, the people still held, and whether the date has come."""
        today = today or local_day()
        with self.engine.connect() as conn:
            last = _last_days(conn)
            held = dict(conn.execute(select(participants.c.program_id, func.count())
                                     .where(participants.c.erased_at.is_(None), participants.c.clocks != "{}")
                                     .group_by(participants.c.program_id)).all())
            rows = conn.execute(select(programs.c.id, programs.c.title, programs.c.retention_until)).all()
        out = []
        for program_id, title, chosen in rows:
            when = retention_from(last.get(program_id), chosen)
            people = held.get(program_id, 0)
            out.append({"program_id": program_id, "title": title, "date": when, "people": people,
                        "due": bool(when and when <= today and people)})
        return out

    def apply_retention(self, today: date | None = None) -> int:
        """Erases the people of every program whose retention date has come, here, by itself (every
        kiosk does the same on the same date); returns how many."""
        erased = 0
        for plan in self.retention_plan(today):
            if plan["due"]:
                erased += self._retrying(lambda conn, p=plan["program_id"]: self._erase_program(conn, p))
        return erased

    def _erase_program(self, conn, program_id: str) -> int:
        stamp = iso(now_utc())
        ids = [r[0] for r in conn.execute(select(participants.c.id).where(
            participants.c.program_id == program_id, participants.c.erased_at.is_(None),
            participants.c.clocks != "{}").order_by(participants.c.id))]
        for person_id in ids:
            self._erase(conn, program_id, person_id, stamp, {"reason": "retention", "erased_by": "retention",
                                                              "kind": "retention"})
        return len(ids)

    # --- a person's own record ----------------------------------------------------------------------

    def person_record(self, participant_id: str) -> dict:
        """Everything central holds about a person, in the shape of kiosk.people.privacy.person_record."""
        row = self.person_row(participant_id)
        if row is None:
            raise PrivacyError("unknown_participant", "no such person on this server")
        program_id = row["program_id"]
        with self.engine.connect() as conn:
            program = conn.execute(select(programs).where(programs.c.id == program_id)).mappings().first() or {}
            last = _last_days(conn, program_id).get(program_id)
            record = {
                "made_at": iso(now_utc()),
                "person": {k: row.get(k) for k in ("id", "program_id", "cohort_id", "title", "first_name", "last_name",
                                                   "role", "position", "organization", "province_code",
                                                   "district_code", "subdistrict_code", "status", "erased_at")},
                "national_id": None, "program": {"id": program_id, "title": program.get("title"),
                                                 "retention_date": _iso(retention_from(last, program.get("retention_until")))},
                "cohort": _first(conn, select(cohorts.c.number, cohorts.c.title, cohorts.c.starts_on, cohorts.c.ends_on)
                                 .where(cohorts.c.program_id == program_id, cohorts.c.id == row["cohort_id"])),
                "consent": {"via": row.get("consent_via"), "notice_version": row.get("consent_notice"),
                            "at": row.get("consent_at"), "by": row.get("consent_by")},
                "badges": [{"code": "-", "issued_at": None, "revoked_at": b["revoked_at"]} for b in conn.execute(
                    select(badges.c.revoked_at).where(badges.c.program_id == program_id,
                                                      badges.c.participant_id == participant_id)).mappings()],
                "scans": [dict(r) for r in conn.execute(
                    select(scans.c.at, sessions.c.day, sessions.c.slot, scans.c.result, scans.c.direction,
                           scans.c.device_id, scans.c.operator, scans.c.via)
                    .select_from(scans.outerjoin(sessions, (sessions.c.program_id == scans.c.program_id)
                                                 & (sessions.c.id == scans.c.session_id)))
                    .where(scans.c.program_id == program_id, scans.c.participant_id == participant_id)
                    .order_by(scans.c.at)).mappings()],
                "attendance": [dict(r) for r in conn.execute(
                    select(sessions.c.day, sessions.c.slot, attendance.c.first_at)
                    .select_from(attendance.join(sessions, (sessions.c.program_id == attendance.c.program_id)
                                                 & (sessions.c.id == attendance.c.session_id)))
                    .where(attendance.c.program_id == program_id, attendance.c.participant_id == participant_id)
                    .order_by(sessions.c.day, sessions.c.slot)).mappings()],
                "certificate": None, "allowance": None,
                "erasure": _first(conn, select(erasures.c.reason, erasures.c.erased_at, erasures.c.erased_by,
                                               erasures.c.kind)
                                  .where(erasures.c.program_id == program_id, erasures.c.id == participant_id)),
                "synced_to": [{"kind": "device", "url": sender, "at": at, "holds_all": True} for sender, at in conn.execute(
                    select(changes.c.received_from, func.max(changes.c.received_at))
                    .where(PEOPLE, changes.c.program_id == program_id,
                           changes.c.entity_id == participant_id).group_by(changes.c.received_from))],
            }
        return record


def _erased(change: dict) -> dict:
    """A change about an erased person, its personal values replaced by their hashes."""
    kept = {k: v for k, v in change.items() if k != "_text"}
    return {**kept, "payload": keys.erase_values("participants", change["payload"])}


def _last_days(conn, program_id: str | None = None) -> dict[str, str]:
    """Per program (or the one asked for), its last session day: a session deleted or removed by
    a coordinator, and a placeholder no change has filled yet, left out."""
    query = (select(sessions.c.program_id, func.max(sessions.c.day))
             .where(sessions.c.deleted.is_(None), sessions.c.clocks != "{}",
                    func.coalesce(sessions.c.status, "active") != "removed")
             .group_by(sessions.c.program_id))
    if program_id is not None:
        query = query.where(sessions.c.program_id == program_id)
    return dict(conn.execute(query).all())


def _first(conn, query) -> dict | None:
    found = conn.execute(query).mappings().first()
    return dict(found) if found else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
