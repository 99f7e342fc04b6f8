"""The central server's read model for dashboards, kept from the change log in the push's transaction:
winning field values per row, scans once each, attendance per (participant, session)."""

import json

from sqlalchemy import and_, func, select, tuple_

from kiosk.clock import iso, now_utc
from kiosk.trust import programkeys
from sync.central.storage.tables import attendance, fields, program_keys, scans, undos
from sync.central.storage.tables import dump as _dump
from sync.protocol import SKEW_FLAG_SECONDS, SyncError

# Fields kept current in `fields` for the dashboards; the full rows live in the change log.
# The reports (kiosk.reports, fed by sync.central.reports) read names, positions and areas too;
# national-ID hashes and phones are never materialized.
MATERIALIZED = {
    # `signing_key` only for programs made before keys left the change log (see program_key)
    "programs": {"title", "organizer", "fiscal_year", "key_check", "signing_key", "certificate_rule",
                 "allowance_rate"},
    "sites": {"name", "kind"},
    "cohorts": {"number", "title", "site_id", "starts_on", "ends_on"},
    "sessions": {"cohort_id", "day", "slot", "site_id", "opens_at", "closes_at", "title", "status"},
    "targets": {"cohort_id", "role", "area_code", "area_name", "expected"},
    "participants": {"cohort_id", "role", "status", "province_code", "district_code", "subdistrict_code",
                     "title", "first_name", "last_name", "position", "organization"},
    "badges": {"participant_id", "revoked_at"},
    "progress_entries": {"cohort_id", "period", "problems", "obstacles", "written_by", "written_at"},
}


class ReadModel:
    """The dashboards' tables (a part of Storage)."""

    def _materialize(self, conn, program_id, fresh, received_from, own_origins, offset) -> None:
        scan_rows, field_rows, firsts = {}, {}, {}
        for c in fresh:
            entity = c["entity"]
            if entity == "scans":
                if c["op"] == "upsert":
                    scan_rows[c["id"]] = _scan_row(c, received_from, offset if c["origin"] in own_origins else None)
                continue
            values = {"_deleted": True} if c["op"] == "delete" else c["payload"]
            kept = MATERIALIZED.get(entity, ())
            hlc = c["hlc"]
            for name, value in values.items():
                if name not in kept and name != "_deleted":
                    continue
                key = (entity, c["id"], name)
                if key not in field_rows or hlc > field_rows[key]["hlc"]:
                    field_rows[key] = {"entity": entity, "entity_id": c["id"], "field": name,
                                       "program_id": program_id, "value": _dump(value), "hlc": hlc}
        for row in scan_rows.values():
            if row["result"] == "checked_in" and (row["direction"] or "in") == "in" and row["participant_id"]:
                key = (row["participant_id"], row["session_id"])
                if key not in firsts or (row["at"], row["id"]) < (firsts[key]["first_at"], firsts[key]["first_scan_id"]):
                    firsts[key] = {"participant_id": key[0], "session_id": key[1], "program_id": program_id,
                                   "first_at": row["at"], "first_scan_id": row["id"]}
        self._upsert_fields(conn, [field_rows[k] for k in sorted(field_rows)])
        self._executemany(conn, "scans",
                          lambda: self.insert(scans).on_conflict_do_nothing(index_elements=["program_id", "id"]),
                          [scan_rows[k] for k in sorted(scan_rows)])

        undone = self._record_undos(conn, program_id, scan_rows.values(), set(firsts))

        def attendance_upsert():
            stmt = self.insert(attendance)
            return stmt.on_conflict_do_update(
                index_elements=["program_id", "participant_id", "session_id"],
                set_={"first_at": stmt.excluded.first_at, "first_scan_id": stmt.excluded.first_scan_id},
                where=stmt.excluded.first_at < attendance.c.first_at)
        self._executemany(conn, "attendance", attendance_upsert, [firsts[k] for k in sorted(firsts) if k not in undone])
        for key in sorted(undone):
            self._rederive(conn, program_id, key, undone[key])

    def _record_undos(self, conn, program_id: str, rows, checked: set) -> dict[tuple, str]:
        """Keeps the latest undo (a coordinator's correction) per (participant, session) of a batch;
        returns, for the keys the batch touches that have one, its time: their attendance is derived
        again as on a kiosk (kiosk.store.changes.derive_attendance: the earliest check-in after it)."""
        latest: dict[tuple, str] = {}
        for r in rows:
            key = (r["participant_id"], r["session_id"])
            if r["result"] == "undone" and key[0] and r["at"] > latest.get(key, ""):
                latest[key] = r["at"]
        for key, at in latest.items():
            stmt = self.insert(undos).values(program_id=program_id, participant_id=key[0], session_id=key[1], at=at)
            conn.execute(stmt.on_conflict_do_update(index_elements=["program_id", "participant_id", "session_id"],
                                                    set_={"at": stmt.excluded.at}, where=stmt.excluded.at > undos.c.at))
        keys = sorted(set(latest) | {k for k in checked if k[0]})
        if not keys:
            return {}
        query = select(undos.c.participant_id, undos.c.session_id, undos.c.at).where(
            undos.c.program_id == program_id, tuple_(undos.c.participant_id, undos.c.session_id).in_(keys))
        return {(p, s): at for p, s, at in conn.execute(query)}

    def _rederive(self, conn, program_id: str, key: tuple, since: str) -> None:
        conn.execute(attendance.delete().where(attendance.c.program_id == program_id,
                                               attendance.c.participant_id == key[0], attendance.c.session_id == key[1]))
        first = conn.execute(
            select(scans.c.id, scans.c.at).where(
                scans.c.program_id == program_id, scans.c.participant_id == key[0], scans.c.session_id == key[1],
                scans.c.result == "checked_in", func.coalesce(scans.c.direction, "in") == "in", scans.c.at > since)
            .order_by(scans.c.at, scans.c.id).limit(1)).first()
        if first:
            conn.execute(attendance.insert().values(program_id=program_id, participant_id=key[0], session_id=key[1],
                                                    first_at=first.at, first_scan_id=first.id))

    def _upsert_fields(self, conn, rows: list[dict]) -> None:
        def build():
            stmt = self.insert(fields)
            return stmt.on_conflict_do_update(
                index_elements=["program_id", "entity", "entity_id", "field"],
                set_={"value": stmt.excluded.value, "hlc": stmt.excluded.hlc},
                where=stmt.excluded.hlc > fields.c.hlc)
        self._executemany(conn, "fields", build, rows)

    def entity_rows(self, program_id: str, entity: str) -> dict[str, dict]:
        """The current rows of an entity on central (deleted ones left out): id -> fields."""
        query = select(fields.c.entity_id, fields.c.field, fields.c.value).where(
            fields.c.program_id == program_id, fields.c.entity == entity)
        rows: dict[str, dict] = {}
        with self.engine.connect() as conn:
            for entity_id, name, value in conn.execute(query):
                rows.setdefault(entity_id, {})[name] = json.loads(value)
        return {k: v for k, v in rows.items() if not v.get("_deleted")}

    def program_key(self, program_id: str) -> str | None:
        """A program's key (hex) held here, or None; a program made before keys left the change
        log has it in its row."""
        key = self._kept_key(program_id)
        if key:
            return key
        row = self.entity_rows(program_id, "programs").get(program_id, {})
        # a row with a key_check is a program made since keys left the log: a `signing_key` a
        # device sends for it is nobody's key (a device of the program could plant its own)
        return None if row.get("key_check") else row.get("signing_key")

    def _kept_key(self, program_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(program_keys.c.key).where(program_keys.c.program_id == program_id)).scalar()

    def store_program_key(self, program_id: str, key_hex: str, added_by: str | None = None) -> bool:
        """Keeps a program's key if the program's row commits to it; False if it does not (or one
        is held already). Raises "bad_program_key" for a key of another program."""
        check = self.entity_rows(program_id, "programs").get(program_id, {}).get("key_check")
        if self.program_key(program_id):  # a legacy program's key is in its row
            return False
        if not programkeys.matches(key_hex, check):
            raise SyncError("bad_program_key", f"that is not the key of program {program_id}")
        with self.write() as conn:
            conn.execute(self.insert(program_keys).on_conflict_do_nothing(index_elements=["program_id"]).values(
                program_id=program_id, key=key_hex, added_by=added_by, added_at=iso(now_utc())))
        return True

    def offered_program_keys(self, device: str, offered) -> int:
        """Keeps the keys a device handed over for programs it may sync and whose key is not held
        here; a wrong or malformed one is left out. Returns how many were kept."""
        allowed, held = self.device_programs(device), set(self.programs())
        kept = 0
        for program_id, key_hex in (offered or {}).items() if isinstance(offered, dict) else ():
            if allowed is not None and program_id not in allowed:
                continue
            if isinstance(key_hex, str) and len(key_hex) == 64 and program_id in held:
                try:
                    kept += self.store_program_key(program_id, key_hex.lower(), added_by=device)
                except (SyncError, ValueError):
                    continue
        return kept

    def program_keys_for(self, program_ids) -> dict[str, str]:
        """The keys held here of these programs (hex), to hand to a device enrolled for them."""
        return {pid: key for pid in program_ids if (key := self.program_key(pid))}

    def scan_ids(self, program_id: str | None = None) -> list[str]:
        query = select(scans.c.id)
        if program_id:
            query = query.where(scans.c.program_id == program_id)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def attendance_count(self, program_id: str | None = None) -> int:
        query = select(func.count()).select_from(attendance)
        if program_id:
            query = query.where(attendance.c.program_id == program_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def attendance_by_session(self, program_id: str) -> dict[str, int]:
        query = (select(attendance.c.session_id, func.count()).where(attendance.c.program_id == program_id)
                 .group_by(attendance.c.session_id))
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def attendance_rows(self, program_id: str) -> list[dict]:
        """Every attendance of a program with how its first check-in came ("door" or "paper")."""
        query = (select(attendance.c.participant_id, attendance.c.session_id, attendance.c.first_at,
                        func.coalesce(scans.c.via, "door").label("via"))
                 .select_from(attendance.outerjoin(scans, and_(scans.c.program_id == attendance.c.program_id,
                                                               scans.c.id == attendance.c.first_scan_id)))
                 .where(attendance.c.program_id == program_id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def flagged_scans(self, program_id: str | None = None) -> list[dict]:
        """Scans uploaded by a device whose clock was off by more than 10 minutes."""
        query = select(scans).where(func.abs(scans.c.clock_offset_s) > SKEW_FLAG_SECONDS)
        if program_id:
            query = query.where(scans.c.program_id == program_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(scans.c.at)).mappings()]


def _scan_row(change: dict, received_from, offset) -> dict:
    p = change["payload"]
    return {"id": change["id"], "program_id": change["program_id"], "participant_id": p.get("participant_id"),
            "session_id": p.get("session_id"), "result": p.get("result"), "direction": p.get("direction") or "in",
            "device_id": p.get("device_id"), "at": p.get("at"), "origin": change["origin"],
            "received_from": received_from, "clock_offset_s": offset, "via": p.get("via")}
