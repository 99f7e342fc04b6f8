"""The central server as main had it at 4458c02, and every older shape brought to it.

A database made before Alembic has no `alembic_version`: this revision takes it as it is. Tables
missing are made; read tables keyed before program came first are rebuilt; columns added since a
database was made are added; `owners` is filled for a change log made before it; a change log
made before signatures were checked per run keeps only the signatures that check. On an empty
database it simply makes the schema. The schema is written out here as it was, not imported:
later revisions change the tables, this one must not.

Revision ID: 0001
"""

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from kiosk.trust import keys

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HLC = String(64).with_variant(String(64, collation="C"), "postgresql")
SIGNATURES = ("signatures", "checked-per-run")  # the meta row of a change log that keeps only checked ones

metadata = MetaData()
meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
devices = Table(
    "devices", metadata,
    Column("id", String(64), primary_key=True), Column("name", Text), Column("secret", String(64), nullable=False),
    Column("programs", Text), Column("enrolled_at", String(32), nullable=False), Column("revoked_at", String(32)),
    Column("last_seen_at", String(32)), Column("last_sync_at", String(32)), Column("clock_offset_s", Float),
    Column("pushed", BigInteger, nullable=False, default=0), Column("pulled", BigInteger, nullable=False, default=0),
)
device_origins = Table(
    "device_origins", metadata,
    Column("origin", String(64), primary_key=True), Column("device_id", String(64), nullable=False),
)
users = Table(
    "central_users", metadata,
    Column("id", String(64), primary_key=True), Column("username", String(40), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False), Column("created_at", String(32), nullable=False),
    Column("disabled_at", String(32)),
)
# Coordinators' logins, kept on the server so that logging out ends every copy of a cookie.
login_sessions = Table(
    "central_login_sessions", metadata,
    Column("id", String(64), primary_key=True), Column("user_id", String(64), nullable=False, index=True),
    Column("created_at", String(32), nullable=False), Column("ended_at", String(32)),
)
enrol_codes = Table(
    "enrol_codes", metadata,
    Column("code_hash", String(64), primary_key=True), Column("name", Text), Column("programs", Text),
    Column("created_at", String(32), nullable=False), Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32)), Column("used_by", String(64)),
    Column("device_id", String(64)),  # a code made to re-enrol this existing device
)
nonces = Table(
    "nonces", metadata,
    Column("device_id", String(64), primary_key=True), Column("nonce", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False), Index("nonces_seen", "seen_at"),
)
changes = Table(
    "changes", metadata,
    Column("program_id", String(64), primary_key=True), Column("origin", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entity", String(32), nullable=False), Column("entity_id", String(64), nullable=False),
    Column("op", String(8), nullable=False), Column("payload", Text, nullable=False), Column("hlc", HLC, nullable=False),
    Column("received_at", String(32), nullable=False), Column("received_from", String(80)),
    Column("sig", String(128)),
    Index("changes_hlc", "program_id", "hlc"),
)
# Which program each (non-event) row id belongs to, and that its first insert was whole: a device
# of one program cannot write a row, or name one, of another.
owners = Table(
    "owners", metadata,
    Column("entity_id", String(64), primary_key=True), Column("program_id", String(64), nullable=False),
)
vectors = Table(
    "vectors", metadata,
    Column("program_id", String(64), primary_key=True), Column("origin", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False), Column("chain", String(64)),
)
# The public key of every origin seen (each proven by its id, see kiosk.trust.keys), for relaying.
origin_keys = Table(
    "origin_keys", metadata,
    Column("origin", String(64), primary_key=True), Column("public_key", String(64), nullable=False),
)
# Program keys (kiosk.trust.programkeys): kept apart from the change log, handed only to the devices of
# their program, and accepted only if the program's signed row commits to them (`key_check`).
program_keys = Table(
    "program_keys", metadata,
    Column("program_id", String(64), primary_key=True), Column("key", String(64), nullable=False),
    Column("added_by", String(64)), Column("added_at", String(40), nullable=False),
)
# The read tables are keyed by program first, so the key serves the per-program reads and no
# second index has to be kept up to date on every push.
fields = Table(
    "fields", metadata,
    Column("program_id", String(64), primary_key=True), Column("entity", String(32), primary_key=True),
    Column("entity_id", String(64), primary_key=True), Column("field", String(40), primary_key=True),
    Column("value", Text), Column("hlc", HLC, nullable=False),
)
scans = Table(
    "scans", metadata,
    Column("program_id", String(64), primary_key=True), Column("id", String(64), primary_key=True),
    Column("participant_id", String(64)), Column("session_id", String(64)), Column("result", String(32)),
    Column("direction", String(8)), Column("device_id", String(64)), Column("at", String(40)),
    Column("origin", String(64), nullable=False), Column("received_from", String(80)),
    Column("clock_offset_s", Float), Column("via", String(8)),
)
attendance = Table(
    "attendance", metadata,
    Column("program_id", String(64), primary_key=True), Column("participant_id", String(64), primary_key=True),
    Column("session_id", String(64), primary_key=True), Column("first_at", String(40), nullable=False),
    Column("first_scan_id", String(64), nullable=False),
)




def upgrade() -> None:
    conn = op.get_bind()
    _rekey_read_tables(conn)
    fill_owners = "owners" not in inspect(conn).get_table_names()
    metadata.create_all(conn)
    _add_missing_columns(conn)
    if fill_owners:
        conn.execute(owners.insert().from_select(
            ["entity_id", "program_id"],
            select(fields.c.entity_id, func.min(fields.c.program_id)).group_by(fields.c.entity_id)))
    _keep_checked_signatures(conn)


def downgrade() -> None:
    metadata.drop_all(op.get_bind())


def _rekey_read_tables(conn) -> None:
    """Moves read tables made before they were keyed by program first into the new shape."""
    found = inspect(conn)
    names = set(found.get_table_names())
    for table in (fields, scans, attendance):
        if table.name not in names or found.get_pk_constraint(table.name)["constrained_columns"][0] == "program_id":
            continue
        for index in found.get_indexes(table.name):
            conn.exec_driver_sql(f"DROP INDEX {index['name']}")
        conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {table.name}_old")
        table.create(conn)
        columns = ", ".join(c.name for c in table.columns)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.name}_old")
        conn.exec_driver_sql(f"DROP TABLE {table.name}_old")


def _add_missing_columns(conn) -> None:
    """Columns added to tables after a database was made (nullable, so ADD COLUMN suffices)."""
    found = inspect(conn)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


def _keep_checked_signatures(conn) -> None:
    """A change log made before signatures were checked per run holds every signature a pusher
    sent, checked or not. Once, each origin's history is checked as one run - at its checkpoints
    and its end (`keys.vouching`) - and every other signature is dropped, so none that nobody
    checked is ever handed on (a bad one at a checkpoint is dropped too)."""
    if conn.execute(select(meta.c.value).where(meta.c.key == SIGNATURES[0])).scalar() == SIGNATURES[1]:
        return
    public = dict(conn.execute(select(origin_keys.c.origin, origin_keys.c.public_key)).all())
    for program_id, origin in conn.execute(select(changes.c.program_id, changes.c.origin).distinct()).all():
        where = (changes.c.program_id == program_id, changes.c.origin == origin)
        rows = conn.execute(select(changes.c.seq, changes.c.entity, changes.c.entity_id, changes.c.op,
                                   changes.c.payload, changes.c.hlc, changes.c.sig)
                            .where(*where).order_by(changes.c.seq)).mappings().all()
        kept = _checked_signatures(program_id, origin, rows, public.get(origin))
        conn.execute(update(changes).where(*where, changes.c.sig.is_not(None)).values(sig=None))
        if kept:
            conn.execute(update(changes).where(*where, changes.c.seq == bindparam("at"))
                         .values(sig=bindparam("kept")), kept)
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(meta)
    conn.execute(insert.values(key=SIGNATURES[0], value=SIGNATURES[1])
                 .on_conflict_do_update(index_elements=["key"], set_={"value": SIGNATURES[1]}))


def _checked_signatures(program_id: str, origin: str, rows, public_key: str | None) -> list[dict]:
    """The signatures of one origin's stored history (rows in seq order) that check at its
    checkpoints and its end, as {"at": seq, "kept": sig}."""
    history = [{"program_id": program_id, "origin": origin, "seq": r["seq"], "entity": r["entity"],
                "id": r["entity_id"], "op": r["op"], "hlc": r["hlc"]} for r in rows]
    chain, kept = None, []
    for change, row, check in zip(history, rows, keys.vouching(history)):
        chain = keys.next_chain(chain, change, row["payload"])
        if check and public_key and keys.verify(public_key, chain, row["sig"]):
            kept.append({"at": row["seq"], "kept": row["sig"]})
    return kept
