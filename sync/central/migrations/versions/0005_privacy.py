"""Personal data under the privacy notice (PDPA) on central, as on every kiosk.

* `erasures`: a person erased by request (on any replica) or at the program's retention date;
  their values are gone from the read tables and the change log (sync.central.storage.privacy).
* `participants.consent_*`: how each person's data came in; `participants.erased_at`.
* `programs.retention_until`: a date the coordinator set earlier than the notice's latest.
* `changes_people`: every change about a person, which an erasure rewrites.
The read tables of people and programs are replayed for the new columns.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
from sqlalchemy import Column, String, Text

from sync.central.storage import rebuild, tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures", Column("program_id", String(64), primary_key=True), Column("id", String(64), primary_key=True),
        Column("reason", Text), Column("erased_at", String(40), nullable=False), Column("erased_by", Text),
        Column("kind", String(20), nullable=False, server_default="request"))
    for name, kind in (("consent_via", String(20)), ("consent_notice", String(40)), ("consent_at", String(40)),
                       ("consent_by", Text), ("erased_at", String(40))):
        op.add_column("participants", Column(name, kind))
    op.add_column("programs", Column("retention_until", String(10)))
    op.create_index("changes_people", "changes", ["program_id", "entity_id"], postgresql_where=tables.PEOPLE,
                    sqlite_where=tables.PEOPLE)
    rebuild.request(op.get_bind(), ["participants", "programs"])


def downgrade() -> None:
    op.drop_index("changes_people", "changes")
    op.drop_column("programs", "retention_until")
    for name in ("erased_at", "consent_by", "consent_at", "consent_notice", "consent_via"):
        op.drop_column("participants", name)
    op.drop_table("erasures")
