"""Devices on the central server: enrolment codes, enrolment, revocation, request nonces, contact."""

import json
import time
import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select, update

from kiosk.clock import iso, now_utc
from kiosk.errors import KioskError
from kiosk.reports.rows import area_name
from kiosk.thai import clean_text
from kiosk.trust import keys
from sync import auth, revocations
from sync.central.storage.tables import (
    NONCE_DAYS,
    device_origins,
    devices,
    enrol_codes,
    nonces,
    origin_keys,
    revoked_origins,
    scans,
    vectors,
)
from sync.central.storage.tables import dump as _dump
from sync.protocol import SKEW_FLAG_SECONDS, SyncError


class Devices:
    """Enrolled devices and what they may do (a part of Storage)."""

    def create_enrol_code(self, name: str | None = None, programs: list[str] | None = None,
                          hours: float = 24, device_id: str | None = None) -> str:
        """A one-time enrolment code, valid for `hours`; optionally limited to some programs.

        With `device_id`, the code re-enrols that existing device (a reinstalled laptop keeps its
        place); a code without one always makes a new device. A revoked device is never re-enrolled.
        """
        code, now = auth.new_code(), now_utc()
        with self.write() as conn:
            if device_id is not None:
                row = conn.execute(select(devices.c.revoked_at).where(devices.c.id == device_id)).first()
                if row is None:
                    raise SyncError("unenrolled", f"device {device_id} is not enrolled here")
                if row[0]:
                    raise SyncError("revoked_device", f"device {device_id} has been revoked")
            conn.execute(enrol_codes.insert().values(
                code_hash=auth.hash_code(code), name=name, programs=_dump(programs) if programs else None,
                created_at=iso(now), expires_at=iso(now + timedelta(hours=hours)), device_id=device_id))
        return code

    def enrol(self, code: str, name: str | None = None, origin: str | None = None,
              public_key: str | None = None) -> dict:
        """Exchanges a one-time code for a device id (chosen here) and its secret; raises
        SyncError("bad_code"). `origin` and its `public_key` are the kiosk's own change stream."""
        if origin is not None and not keys.certifies(origin, public_key):
            raise SyncError("bad_signature", "the enrolling kiosk's key is not its origin's")

        def work(conn):
            now = iso(now_utc())
            row = conn.execute(select(enrol_codes).where(enrol_codes.c.code_hash == auth.hash_code(code or ""))
                               .with_for_update()).mappings().first()
            if row is None or row["used_at"] or row["expires_at"] < now:
                raise SyncError("bad_code", "this enrolment code is unknown, used or expired")
            device_id = row["device_id"] or str(uuid.uuid4())
            if row["device_id"] and conn.execute(select(devices.c.revoked_at)
                                                 .where(devices.c.id == device_id)).scalar():
                raise SyncError("revoked_device", f"device {device_id} has been revoked")
            conn.execute(update(enrol_codes).where(enrol_codes.c.code_hash == row["code_hash"])
                         .values(used_at=now, used_by=device_id))
            secret = auth.new_secret()
            values = dict(name=(name if isinstance(name, str) else None) or row["name"], secret=secret,
                          programs=row["programs"], enrolled_at=now)
            conn.execute(self.insert(devices).values(id=device_id, pushed=0, pulled=0, **values)
                         .on_conflict_do_update(index_elements=["id"], set_=values))
            if origin is not None:
                self._bind_origin(conn, origin, public_key, device_id)
            return {"device_id": device_id, "secret": secret, "server_id": self.server_id,
                    "programs": json.loads(row["programs"]) if row["programs"] else None}
        return self._retrying(work)

    def _bind_origin(self, conn, origin: str, public_key: str, device_id: str) -> None:
        conn.execute(self.insert(origin_keys).values(origin=origin, public_key=public_key)
                     .on_conflict_do_nothing(index_elements=["origin"]))
        conn.execute(self.insert(device_origins).values(origin=origin, device_id=device_id)
                     .on_conflict_do_nothing(index_elements=["origin"]))

    def revoke(self, device_id: str) -> bool:
        """Revokes a device: its signed requests are refused from now on, and so is every change
        of its origins past the last one accepted here, whoever brings it (sync.revocations)."""
        def work(conn):
            now = iso(now_utc())
            done = conn.execute(update(devices).where(devices.c.id == device_id)
                                .values(revoked_at=now).returning(devices.c.id)).first()
            if done is not None:
                for origin in sorted(self._origins_of(conn, device_id)):
                    self._record_revocation(conn, origin, device_id, now)
            return done is not None
        return self._retrying(work)

    def _record_revocation(self, conn, origin: str, device_id: str, now: str) -> None:
        """Central's signed statement of the last change of each program it holds from `origin`
        (the vector rows are locked: no push of that origin commits in between)."""
        if conn.execute(select(revoked_origins.c.origin).where(revoked_origins.c.origin == origin)).first():
            return  # revoked before: the first statement stands
        through = dict(conn.execute(select(vectors.c.program_id, vectors.c.seq)
                                    .where(vectors.c.origin == origin).with_for_update()).all())
        entry = revocations.signed(self.signer, origin, device_id, now, through)
        conn.execute(revoked_origins.insert().values(origin=origin, device_id=device_id, entry=_dump(entry)))

    def revocation_entries(self) -> list[dict]:
        """Every revocation statement, signed, as kiosks receive them in `hello`."""
        with self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(select(revoked_origins.c.entry)
                                                           .order_by(revoked_origins.c.origin))]

    def _revoked_cutoffs(self, conn, program_id: str, origins) -> dict[str, int]:
        """Per revoked origin among `origins`, the last change of the program accepted from it."""
        rows = conn.execute(select(revoked_origins.c.origin, revoked_origins.c.entry)
                            .where(revoked_origins.c.origin.in_(sorted(set(origins))))).all()
        return {origin: json.loads(entry)["statement"]["through"].get(program_id, 0) for origin, entry in rows}

    def set_room(self, device_id: str, room: str | None, area: str | None) -> None:
        """Names the room a device stands in and the area (province, district or subdistrict code)
        whose people it expects; empty clears them. Raises KioskError ("unknown_area",
        "field_too_long") and SyncError("unenrolled")."""
        room, area = clean_text(room or "") or None, (area or "").strip() or None
        if room and len(room) > 100:
            raise KioskError("field_too_long", field="room")
        if area and not (area.isdigit() and len(area) in (2, 4, 6) and area_name(area)):
            raise KioskError("unknown_area", field="area")
        with self.write() as conn:
            done = conn.execute(update(devices).where(devices.c.id == device_id)
                                .values(room=room, room_area=area).returning(devices.c.id)).first()
        if done is None:
            raise SyncError("unenrolled", f"device {device_id} is not enrolled here")

    def lookup(self, device_id: str):
        """(secret, revoked) of a device, or None: what `auth.verify` needs."""
        with self.engine.connect() as conn:
            row = conn.execute(select(devices.c.secret, devices.c.revoked_at)
                               .where(devices.c.id == device_id)).first()
        return (row[0], bool(row[1])) if row else None

    def remember_nonce(self, device_id: str, nonce: str) -> bool:
        """Stores a request nonce; False if this device used it before (a replay)."""
        with self.write() as conn:
            inserted = conn.execute(self.insert(nonces).values(device_id=device_id, nonce=nonce, seen_at=time.time())
                                    .on_conflict_do_nothing().returning(nonces.c.nonce)).first()
        return inserted is not None

    def prune_nonces(self) -> None:
        with self.write() as conn:
            conn.execute(delete(nonces).where(nonces.c.seen_at < time.time() - NONCE_DAYS * 86400))

    def device_programs(self, device_id: str) -> list[str] | None:
        """The programs a device may sync, or None for any."""
        with self.engine.connect() as conn:
            text = conn.execute(select(devices.c.programs).where(devices.c.id == device_id)).scalar()
        return json.loads(text) if text else None

    def check_program(self, device_id: str | None, program_id: str) -> None:
        allowed = self.device_programs(device_id) if device_id else None
        if allowed is not None and program_id not in allowed:
            raise SyncError("wrong_program", f"this device is not enrolled for program {program_id}")

    def record_contact(self, device_id: str, offset: float, origin: str | None = None,
                       synced: bool = False, pushed: int = 0, pulled: int = 0) -> None:
        """Notes a device's request: when, its clock offset, the origin it now writes as."""
        now = iso(now_utc())
        values = {"last_seen_at": now, "clock_offset_s": round(offset, 3),
                  "pushed": devices.c.pushed + pushed, "pulled": devices.c.pulled + pulled}
        if synced:
            values["last_sync_at"] = now
        with self.write() as conn:
            conn.execute(update(devices).where(devices.c.id == device_id).values(**values))
            if origin and origin != self.server_id:
                conn.execute(self.insert(device_origins).values(origin=origin, device_id=device_id)
                             .on_conflict_do_nothing(index_elements=["origin"]))

    def clock_offset(self, device_id: str) -> float | None:
        with self.engine.connect() as conn:
            return conn.execute(select(devices.c.clock_offset_s).where(devices.c.id == device_id)).scalar()

    def _take_nonce(self, conn, device_id: str, nonce: str) -> None:
        """Stores a request's nonce inside its transaction; refuses a replay."""
        inserted = conn.execute(self.insert(nonces).values(device_id=device_id, nonce=nonce, seen_at=time.time())
                                .on_conflict_do_nothing().returning(nonces.c.nonce)).first()
        if inserted is None:
            raise SyncError("replayed", "this request was already received")

    def _check_device(self, conn, device_id: str, program_id: str) -> None:
        """The pushing device is enrolled, not revoked, and allowed this program."""
        row = conn.execute(select(devices.c.revoked_at, devices.c.programs).where(devices.c.id == device_id)).first()
        if row is None:
            raise SyncError("unenrolled", f"device {device_id} is not enrolled here")
        if row[0]:
            raise SyncError("revoked_device", f"device {device_id} has been revoked")
        if row[1] and program_id not in json.loads(row[1]):
            raise SyncError("wrong_program", f"this device is not enrolled for program {program_id}")

    def _origins_of(self, conn, device_id: str) -> set[str]:
        return {r[0] for r in conn.execute(select(device_origins.c.origin).where(device_origins.c.device_id == device_id))}

    def device_list(self) -> list[dict]:
        flagged = (select(scans.c.received_from, func.count().label("n"))
                   .where(func.abs(scans.c.clock_offset_s) > SKEW_FLAG_SECONDS).group_by(scans.c.received_from))
        with self.engine.connect() as conn:
            counts = dict(conn.execute(flagged).all())
            rows = [dict(r) for r in conn.execute(select(devices).order_by(devices.c.enrolled_at)).mappings()]
        for row in rows:
            row.pop("secret")
            row["skewed"] = row["clock_offset_s"] is not None and abs(row["clock_offset_s"]) > SKEW_FLAG_SECONDS
            row["flagged_scans"] = counts.get(row["id"], 0)
        return rows

