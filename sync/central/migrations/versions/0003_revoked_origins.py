"""Revocation travels (issue 20): central's signed statement per origin of a revoked device.

`revoked_origins` holds, per origin a revoked device wrote as, central's signed statement of
the last change of each program it accepted from it (`sync.revocations`); nothing after it is
accepted, whoever brings it. A device revoked before this revision gets its statements now,
through what central holds of its origins, dated when it was revoked and signed with the
server's key (a server without a key of its own yet gets one at start, after the revisions:
its devices revoked before are then stated when revoked again).

Revision ID: 0003
Revises: 0002
"""

import json

from alembic import op
from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, select

from kiosk.trust import keys
from sync import revocations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

metadata = MetaData()
meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
devices = Table("devices", metadata, Column("id", String(64), primary_key=True),
                Column("revoked_at", String(32)))
device_origins = Table("device_origins", metadata, Column("origin", String(64), primary_key=True),
                       Column("device_id", String(64), nullable=False))
vectors = Table("vectors", metadata, Column("program_id", String(64), primary_key=True),
                Column("origin", String(64), primary_key=True), Column("seq", BigInteger))


def upgrade() -> None:
    revoked = op.create_table(
        "revoked_origins", Column("origin", String(64), primary_key=True),
        Column("device_id", String(64), nullable=False), Column("entry", Text, nullable=False))
    conn = op.get_bind()
    signer = _server_signer(conn)
    if signer is None:
        return
    rows = conn.execute(select(device_origins.c.origin, devices.c.id, devices.c.revoked_at)
                        .join_from(device_origins, devices, devices.c.id == device_origins.c.device_id)
                        .where(devices.c.revoked_at.is_not(None)).order_by(device_origins.c.origin)).all()
    for origin, device_id, revoked_at in rows:
        through = {p: int(s) for p, s in conn.execute(select(vectors.c.program_id, vectors.c.seq)
                                                      .where(vectors.c.origin == origin))}
        entry = revocations.signed(signer, origin, device_id, revoked_at, through)
        conn.execute(revoked.insert().values(origin=origin, device_id=device_id, entry=_dump(entry)))


def downgrade() -> None:
    op.drop_table("revoked_origins")


def _server_signer(conn) -> keys.Signer | None:
    """The server's signer, if its key is the one its id was made from."""
    found = dict(conn.execute(select(meta.c.key, meta.c.value).where(meta.c.key.in_(["server_id", "server_key"]))).all())
    if not found.get("server_key") or keys.origin_of(keys.public_hex(found["server_key"])) != found.get("server_id"):
        return None
    return keys.Signer(found["server_key"])


def _dump(value) -> str:
    """Canonical JSON text, as the server keeps the statements (sync.central.storage.tables.dump)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
