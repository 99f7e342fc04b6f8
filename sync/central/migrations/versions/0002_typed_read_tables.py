"""Typed read tables a database can aggregate, filled from the change log; rooms; shared login back-off.

The field-per-row `fields` table gives way to one table per entity (programs, sites, cohorts,
sessions, targets, participants, badges, progress_entries) with the columns the reports read,
`participants.attended` and `area_counts` (what the national dashboard sums), `login_failures`
(the login back-off every process of the server shares), the room of each device and an index
of attendance by session. The rows are built by replaying the change log through the server's
projection, oldest stamp first, then the counts are made: once every revision has run, by the
projection of the head (`sync.central.storage.rebuild`), which writes the tables as they are then.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
from sqlalchemy import BigInteger, Column, Float, Integer, String, Text

from sync.central.storage import rebuild

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HLC = String(64).with_variant(String(64, collation="C"), "postgresql")
CODE = String(200)
TYPED = {
    "programs": [Column("title", Text), Column("organizer", Text), Column("fiscal_year", Integer),
                 Column("key_check", String(32)), Column("signing_key", String(64)), Column("certificate_rule", Text),
                 Column("allowance_rate", Float)],
    "sites": [Column("name", Text), Column("kind", String(40))],
    "cohorts": [Column("number", Integer), Column("title", Text), Column("site_id", String(64)),
                Column("starts_on", String(10)), Column("ends_on", String(10))],
    "sessions": [Column("cohort_id", String(64)), Column("day", String(10)), Column("slot", String(40)),
                 Column("site_id", String(64)), Column("opens_at", String(40)), Column("closes_at", String(40)),
                 Column("title", Text)],
    "targets": [Column("cohort_id", String(64)), Column("role", String(40)), Column("area_code", CODE),
                Column("area_name", Text), Column("expected", BigInteger)],
    "participants": [Column("cohort_id", String(64)), Column("role", String(40)), Column("status", String(40)),
                     Column("province_code", CODE), Column("district_code", CODE), Column("subdistrict_code", CODE),
                     Column("title", Text), Column("first_name", Text), Column("last_name", Text),
                     Column("position", Text), Column("organization", Text),
                     Column("attended", Integer, nullable=False, server_default="0")],
    "badges": [Column("participant_id", String(64)), Column("revoked_at", String(40))],
    "progress_entries": [Column("cohort_id", String(64)), Column("period", String(40)), Column("problems", Text),
                         Column("obstacles", Text), Column("written_by", Text), Column("written_at", String(40))],
}


def upgrade() -> None:
    for name, columns in TYPED.items():
        op.create_table(name, Column("program_id", String(64), primary_key=True),
                        Column("id", String(64), primary_key=True), *columns,
                        Column("clocks", Text, nullable=False, server_default="{}"), Column("deleted", HLC))
    op.create_index("sessions_cohort", "sessions", ["program_id", "cohort_id"])
    op.create_index("participants_area", "participants",
                    ["program_id", "province_code", "district_code", "subdistrict_code"])
    op.create_index("participants_cohort", "participants", ["program_id", "cohort_id"])
    op.create_index("attendance_session", "attendance", ["program_id", "session_id"])
    op.create_table("area_counts", *[Column(k, String(64) if k.endswith("_id") else CODE if k.endswith("_code")
                                            else String(40), primary_key=True)
                                     for k in ("program_id", "cohort_id", "role", "province_code", "district_code",
                                               "subdistrict_code")],
                    Column("registered", BigInteger, nullable=False, server_default="0"),
                    Column("attended", BigInteger, nullable=False, server_default="0"))
    op.create_table("login_failures", Column("key", String(200), primary_key=True),
                    Column("at", Float, primary_key=True))
    op.add_column("devices", Column("room", Text))
    op.add_column("devices", Column("room_area", String(200)))
    rebuild.request(op.get_bind(), ["*"])
    op.drop_table("fields")


def downgrade() -> None:
    raise NotImplementedError("the field-per-row table is not made again: restore a backup taken before 0002")
