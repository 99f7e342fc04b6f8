"""The central server's tables, its engine, and canonical JSON: shared by every part of Storage."""

import json
import re

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

NAMED_PARAM = re.compile(r"%\((\w+)\)s")
HLC = String(64).with_variant(String(64, collation="C"), "postgresql")
NONCE_DAYS = 30

metadata = MetaData()
meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
devices = Table(
    "devices", metadata,
    Column("id", String(64), primary_key=True), Column("name", Text), Column("secret", String(64), nullable=False),
    Column("programs", Text), Column("enrolled_at", String(32), nullable=False), Column("revoked_at", String(32)),
    Column("last_seen_at", String(32)), Column("last_sync_at", String(32)), Column("clock_offset_s", Float),
    Column("pushed", BigInteger, nullable=False, default=0), Column("pulled", BigInteger, nullable=False, default=0),
    # the room a device's scans count for in a session followed from several sites (a broadcast):
    # its name, and the area code (province, district or subdistrict) whose people it expects
    Column("room", Text), Column("room_area", String(200)),
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
# The rows of the change log about people (a literal, so that a partial index serves it on both engines).
PEOPLE = text("entity = 'participants'")
changes = Table(
    "changes", metadata,
    Column("program_id", String(64), primary_key=True), Column("origin", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entity", String(32), nullable=False), Column("entity_id", String(64), nullable=False),
    Column("op", String(8), nullable=False), Column("payload", Text, nullable=False), Column("hlc", HLC, nullable=False),
    Column("received_at", String(32), nullable=False), Column("received_from", String(80)),
    Column("sig", String(128)),
    Index("changes_hlc", "program_id", "hlc"),
    # an erasure finds every change about its person (sync.central.storage.privacy): people only,
    # so that the scans, most of the log, cost no second index
    Index("changes_people", "program_id", "entity_id", postgresql_where=PEOPLE, sqlite_where=PEOPLE),
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
# Per origin of a revoked device, central's signed statement of the last change of each program it
# accepted from it (sync.revocations): nothing after it is accepted, whoever brings it.
revoked_origins = Table(
    "revoked_origins", metadata,
    Column("origin", String(64), primary_key=True), Column("device_id", String(64), nullable=False),
    Column("entry", Text, nullable=False),
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
scans = Table(
    "scans", metadata,
    Column("program_id", String(64), primary_key=True), Column("id", String(64), primary_key=True),
    Column("participant_id", String(64)), Column("session_id", String(64)), Column("result", String(32)),
    Column("direction", String(8)), Column("device_id", String(64)), Column("at", String(40)),
    Column("origin", String(64), nullable=False), Column("received_from", String(80)),
    Column("clock_offset_s", Float), Column("via", String(8)), Column("operator", Text), Column("note", Text),
    # an undo by hand finds the person's check-ins after it by key (sync.central.storage.projection)
    Index("scans_person", "program_id", "participant_id"),
)
attendance = Table(
    "attendance", metadata,
    Column("program_id", String(64), primary_key=True), Column("participant_id", String(64), primary_key=True),
    Column("session_id", String(64), primary_key=True), Column("first_at", String(40), nullable=False),
    Column("first_scan_id", String(64), nullable=False),
    Index("attendance_session", "program_id", "session_id"),
)


def _typed(name: str, *columns, indexes=()) -> Table:
    """A read table of one entity, projected from the change log (sync.central.storage.projection):
    the winning value of each field by HLC, the stamps in `clocks` (JSON), a delete's stamp in
    `deleted`; the same column names as the kiosk's table, so one SQL text reads both."""
    return Table(name, metadata, Column("program_id", String(64), primary_key=True),
                 Column("id", String(64), primary_key=True), *columns,
                 Column("clocks", Text, nullable=False, default="{}"), Column("deleted", HLC), *indexes)


CODE = String(200)  # what the validator lets an area code be (text of up to 200)
programs = _typed("programs", Column("title", Text), Column("organizer", Text), Column("fiscal_year", Integer),
                  Column("key_check", String(32)), Column("signing_key", String(64)),
                  Column("certificate_rule", Text), Column("allowance_rate", Float),
                  Column("retention_until", String(10)))
sites = _typed("sites", Column("name", Text), Column("kind", String(40)))
cohorts = _typed("cohorts", Column("number", Integer), Column("title", Text), Column("site_id", String(64)),
                 Column("starts_on", String(10)), Column("ends_on", String(10)))
sessions = _typed("sessions", Column("cohort_id", String(64)), Column("day", String(10)), Column("slot", String(40)),
                  Column("site_id", String(64)), Column("opens_at", String(40)), Column("closes_at", String(40)),
                  Column("title", Text), Column("status", String(20)),  # "removed": counts nowhere
                  indexes=[Index("sessions_cohort", "program_id", "cohort_id")])
targets = _typed("targets", Column("cohort_id", String(64)), Column("role", String(40)),
                 Column("area_code", CODE), Column("area_name", Text), Column("expected", BigInteger))
# `attended`: how many attendance rows the person has, kept with each new one, so "came at least
# once" needs no join; a row with no first_name yet only holds that count until the person arrives.
participants = _typed(
    "participants", Column("cohort_id", String(64)), Column("role", String(40)), Column("status", String(40)),
    Column("province_code", CODE), Column("district_code", CODE), Column("subdistrict_code", CODE),
    Column("title", Text), Column("first_name", Text), Column("last_name", Text), Column("position", Text),
    Column("organization", Text), Column("attended", Integer, nullable=False, default=0),
    # how the person's data came in, and when it was erased here (kiosk.people.privacy)
    Column("consent_via", String(20)), Column("consent_notice", String(40)), Column("consent_at", String(40)),
    Column("consent_by", Text), Column("erased_at", String(40)),
    indexes=[Index("participants_area", "program_id", "province_code", "district_code", "subdistrict_code"),
             Index("participants_cohort", "program_id", "cohort_id")])
badges = _typed("badges", Column("participant_id", String(64)), Column("revoked_at", String(40)))
progress_entries = _typed("progress_entries", Column("cohort_id", String(64)), Column("period", String(40)),
                          Column("problems", Text), Column("obstacles", Text), Column("written_by", Text),
                          Column("written_at", String(40)))
READ_TABLES = {t.name: t for t in (programs, sites, cohorts, sessions, targets, participants, badges,
                                   progress_entries)}
# A person erased (PDPA), by request on any replica or at the program's retention date: no personal
# value of theirs is kept in the read tables or the change log (sync.central.storage.privacy).
erasures = Table(
    "erasures", metadata,
    Column("program_id", String(64), primary_key=True), Column("id", String(64), primary_key=True),
    Column("reason", Text), Column("erased_at", String(40), nullable=False), Column("erased_by", Text),
    Column("kind", String(20), nullable=False, default="request"),
)
# Active people and those who came at least once, per (program, cohort, role, area): what the
# national dashboard sums, kept in the transaction that changes a person or their first attendance.
area_counts = Table(
    "area_counts", metadata,
    Column("program_id", String(64), primary_key=True), Column("cohort_id", String(64), primary_key=True),
    Column("role", String(40), primary_key=True), Column("province_code", CODE, primary_key=True),
    Column("district_code", CODE, primary_key=True), Column("subdistrict_code", CODE, primary_key=True),
    Column("registered", BigInteger, nullable=False, default=0),
    Column("attended", BigInteger, nullable=False, default=0),
)
# Failed logins per account and address, shared by every process of the server (the back-off).
login_failures = Table(
    "login_failures", metadata,
    Column("key", String(200), primary_key=True), Column("at", Float, primary_key=True),
)
# The latest undo of a check-in by a coordinator per (participant, session): attendance there is
# the earliest check-in after it (kept apart from `scans` so a push looks it up by key, not by scan).
undos = Table(
    "undos", metadata,
    Column("program_id", String(64), primary_key=True), Column("participant_id", String(64), primary_key=True),
    Column("session_id", String(64), primary_key=True), Column("at", String(40), nullable=False),
)


def make_engine(url: str):
    """An engine for the URL; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=16)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged push, an imported bundle and a coordinator's edit on central
            # survive a power cut (NORMAL in WAL mode may lose the last commits). Measured with
            # scripts/bench/sync.py --kiosks 5 --backends sqlite on a shared machine: 5,300-6,000
            # changes/s against 6,730 with NORMAL.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # a writer takes the lock at BEGIN instead of failing to upgrade a read transaction;
            # readers (WAL) neither wait for writers nor hold them up
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writes") else "BEGIN")
        return engine
    return create_engine(url, pool_size=16, max_overflow=8, pool_pre_ping=True)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_encode_str = json.encoder.encode_basestring  # what _ENCODER does to a str, without its set-up


def dump(value) -> str:
    """Canonical JSON text: sorted keys, compact, UTF-8 kept (the same bytes for the same value)."""
    return _encode_str(value) if type(value) is str else _ENCODER.encode(value)




def transient(exc: DBAPIError) -> bool:
    """A lost race worth one more try: unique violation on a new origin, deadlock, busy SQLite."""
    text = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(
        word in text for word in ("deadlock", "locked", "busy", "serializ", "could not obtain lock"))


_dump = dump  # the name the benchmark and older callers know
