"""Corrections by hand reach central as the kiosk counts them (issue 22).

* `undos`: the latest undo of a check-in by a coordinator per (participant, session); attendance
  there is the earliest check-in after it (`sync.central.storage.projection`). Filled from the
  scans held, whose attendance is then derived again.
* `sessions.status`: "removed" when a coordinator took a session out (its attendance stays on
  record and counts nowhere); every session held is active until its changes say otherwise,
  which the replay of the sessions' changes after the upgrade does.
* `scans.operator`, `scans.note`: who made a scan and why a correction was made, for the
  report's corrections by hand; filled from the change log for the corrections held.
* `scans_person`: scans by person, so that an undo finds the check-ins after it by key.

Revision ID: 0004
Revises: 0003
"""

import json

from alembic import op
from sqlalchemy import Column, MetaData, String, Table, Text, bindparam, func, select, update

from sync.central.storage import rebuild

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

metadata = MetaData()
scans = Table("scans", metadata, Column("program_id", String(64), primary_key=True),
              Column("id", String(64), primary_key=True), Column("participant_id", String(64)),
              Column("session_id", String(64)), Column("result", String(32)), Column("at", String(40)),
              Column("via", String(8)), Column("operator", Text), Column("note", Text))
changes = Table("changes", metadata, Column("program_id", String(64), primary_key=True),
                Column("entity", String(32)), Column("entity_id", String(64)), Column("payload", Text))
sessions = Table("sessions", metadata, Column("program_id", String(64), primary_key=True),
                 Column("id", String(64), primary_key=True), Column("status", String(20)))
CHUNK = 1000


def upgrade() -> None:
    undos = op.create_table(
        "undos", Column("program_id", String(64), primary_key=True),
        Column("participant_id", String(64), primary_key=True), Column("session_id", String(64), primary_key=True),
        Column("at", String(40), nullable=False))
    op.add_column("sessions", Column("status", String(20)))
    op.add_column("scans", Column("operator", Text))
    op.add_column("scans", Column("note", Text))
    op.create_index("scans_person", "scans", ["program_id", "participant_id"])
    conn = op.get_bind()
    conn.execute(update(sessions).values(status="active"))
    conn.execute(undos.insert().from_select(
        ["program_id", "participant_id", "session_id", "at"],
        select(scans.c.program_id, scans.c.participant_id, scans.c.session_id, func.max(scans.c.at))
        .where(scans.c.result == "undone", scans.c.participant_id.is_not(None), scans.c.session_id.is_not(None))
        .group_by(scans.c.program_id, scans.c.participant_id, scans.c.session_id)))
    _fill_corrections(conn)
    rebuild.request(conn, ["sessions"])


def downgrade() -> None:
    op.drop_index("scans_person", "scans")
    for column in ("note", "operator"):
        op.drop_column("scans", column)
    op.drop_column("sessions", "status")
    op.drop_table("undos")


def _fill_corrections(conn) -> None:
    """Who made each correction by hand held here, and why, from its change."""
    ids = [r[0] for r in conn.execute(select(scans.c.id).where(scans.c.via == "manual").order_by(scans.c.id))]
    for start in range(0, len(ids), CHUNK):
        found = conn.execute(select(changes.c.program_id, changes.c.entity_id, changes.c.payload).where(
            changes.c.entity == "scans", changes.c.entity_id.in_(ids[start:start + CHUNK])))
        rows = [{"k_program": p, "k_id": i, "operator": (payload := json.loads(text)).get("operator"),
                 "note": payload.get("note")} for p, i, text in found]
        if rows:
            conn.execute(update(scans).where(scans.c.program_id == bindparam("k_program"),
                                             scans.c.id == bindparam("k_id"))
                         .values(operator=bindparam("operator"), note=bindparam("note")), rows)
