"""The central server's read model, kept from the change log in the push's transaction: the typed
rows (`sync.central.storage.projection`), scans once each (with who made them and, for a
correction by hand, why), attendance per (participant, session) as the kiosk derives it."""


from sqlalchemy import and_, func, select

from kiosk.clock import iso, now_utc
from kiosk.trust import programkeys
from sync.central.storage.projection import Projection
from sync.central.storage.tables import READ_TABLES, attendance, program_keys, scans
from sync.protocol import SKEW_FLAG_SECONDS, SyncError


class ReadModel(Projection):
    """The dashboards' tables (a part of Storage)."""

    def _materialize(self, conn, program_id, fresh, received_from, own_origins, offset) -> None:
        scan_rows, deltas = {}, {}
        for c in fresh:
            if c["entity"] == "scans" and c["op"] == "upsert":
                scan_rows[c["id"]] = _scan_row(c, received_from, offset if c["origin"] in own_origins else None)
        self._project(conn, program_id, fresh, deltas)
        self._executemany(conn, "scans",
                          lambda: self.insert(scans).on_conflict_do_nothing(index_elements=["program_id", "id"]),
                          [scan_rows[k] for k in sorted(scan_rows)])
        self._store_attendance(conn, program_id, scan_rows.values(), deltas)
        self._apply_deltas(conn, deltas)

    def entity_rows(self, program_id: str, entity: str, conn=None) -> dict[str, dict]:
        """The current rows of an entity on central (deleted ones and placeholders left out): id -> fields."""
        table = READ_TABLES[entity]
        query = select(table).where(table.c.program_id == program_id, table.c.deleted.is_(None),
                                    table.c.clocks != "{}")
        if conn is None:
            with self.engine.connect() as own:
                return self.entity_rows(program_id, entity, own)
        return {r["id"]: _fields(r) for r in conn.execute(query).mappings()}

    def entity_row(self, program_id: str, entity: str, entity_id: str | None, conn=None) -> dict | None:
        """One current row of an entity, or None."""
        table = READ_TABLES[entity]
        query = select(table).where(table.c.program_id == program_id, table.c.id == (entity_id or ""),
                                    table.c.deleted.is_(None), table.c.clocks != "{}")
        if conn is None:
            with self.engine.connect() as own:
                return self.entity_row(program_id, entity, entity_id, own)
        found = conn.execute(query).mappings().first()
        return _fields(found) if found else None

    def program_key(self, program_id: str) -> str | None:
        """A program's key (hex) held here, or None; a program made before keys left the change
        log has it in its row."""
        key = self._kept_key(program_id)
        if key:
            return key
        row = self.entity_row(program_id, "programs", program_id) or {}
        # a row with a key_check is a program made since keys left the log: a `signing_key` a
        # device sends for it is nobody's key (a device of the program could plant its own)
        return None if row.get("key_check") else row.get("signing_key")

    def _kept_key(self, program_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(program_keys.c.key).where(program_keys.c.program_id == program_id)).scalar()

    def store_program_key(self, program_id: str, key_hex: str, added_by: str | None = None) -> bool:
        """Keeps a program's key if the program's row commits to it; False if it does not (or one
        is held already). Raises "bad_program_key" for a key of another program."""
        check = (self.entity_row(program_id, "programs", program_id) or {}).get("key_check")
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

    def correction_rows(self, program_id: str) -> list[dict]:
        """A program's corrections of attendance by hand (scans via "manual"): who, when and why."""
        query = select(scans.c.id, scans.c.participant_id, scans.c.session_id, scans.c.result, scans.c.operator,
                       scans.c.at, scans.c.note).where(scans.c.program_id == program_id, scans.c.via == "manual")
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
            "received_from": received_from, "clock_offset_s": offset, "via": p.get("via"),
            "operator": p.get("operator"), "note": p.get("note")}


def _fields(row) -> dict:
    """A typed row as the reports read it: its fields, without the projection's bookkeeping."""
    return {k: v for k, v in row.items() if k not in ("program_id", "clocks", "deleted")}
