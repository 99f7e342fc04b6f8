"""Tables, through sqlite-utils migrations, and the registry of synced entities.

Domain tables (ENTITIES) are written only through `kiosk.store.changes`, which logs every change;
`attendance` is derived from scans; `users`, `meta` and the sync tables are local to a device.
"""

from sqlite_utils.migrations import Migrations

migrations = Migrations("kiosk")
# Names migrations were once applied under: a database that recorded one has applied the migration.
RENAMED = {"0002_i9_reports": "0002_reports", "0003_i8_registration": "0003_registration",
           "0004_signed_changes_i10": "0004_signed_changes", "0006_program_keys_i10": "0006_program_keys"}


def rename_applied(db) -> None:
    """Records migrations applied under an old name by their name now, so none runs twice."""
    if "_sqlite_migrations" in db.table_names():
        for old, new in RENAMED.items():
            db.execute("update _sqlite_migrations set name = ? where migration_set = ? and name = ?",
                       [new, migrations.name, old])

# Entity name -> (table, fields a change may set). The id and program_id are implicit.
ENTITIES: dict[str, tuple[str, ...]] = {
    "programs": ("title", "organizer", "fiscal_year", "key_check", "certificate_rule", "created_at",
                 "allowance_rate", "retention_until"),
    "sites": ("name", "kind", "address"),
    "cohorts": ("number", "title", "site_id", "starts_on", "ends_on"),
    "sessions": ("cohort_id", "day", "slot", "opens_at", "closes_at", "site_id", "title", "status"),
    "targets": ("cohort_id", "role", "area_code", "area_name", "expected"),
    "participants": (
        "cohort_id", "title", "first_name", "last_name", "role", "position", "organization",
        "province_code", "district_code", "subdistrict_code", "community", "phone",
        "nid_hash", "nid_last4", "status", "source_key", "registered_via", "created_at",
        "consent_via", "consent_notice", "consent_at", "consent_by",
    ),
    "badges": ("participant_id", "code", "issued_at", "revoked_at"),
    "scans": (
        "participant_id", "session_id", "code", "result", "direction", "device_id",
        "operator", "at", "nonce", "via", "note",
    ),
    # A coordinator's note on one reporting period (one row per cohort and period).
    "progress_entries": ("cohort_id", "period", "problems", "obstacles", "written_by", "written_at"),
    # A person erased (PDPA §33), by request or at the program's retention date: the id is the
    # person's. Every replica that holds it keeps no personal value of theirs (kiosk.people.privacy).
    "erasures": ("reason", "erased_at", "erased_by", "kind"),
}
# Entities that are only ever appended: no per-field clocks, a repeated id is a no-op.
APPEND_ONLY = frozenset({"scans", "erasures"})

# What a synced value may be: (kind, limit). Kinds: "text" (up to `limit` characters), "int"
# (0 to `limit`), "real" (a finite number, 0 to `limit`), "ref" (a row id), "date" (YYYY-MM-DD), "time" (HH:MM), "stamp" (ISO 8601 UTC),
# "code" (lower_snake), "badge" (A-Z 2-7 0-9), "hex" (exactly `limit` hex digits), "json" (text).
# A field not named here is text of up to 200 characters; every field may also be null, except
# the REQUIRED ones of a row's first insert.
FIELD_RULES: dict[str, dict[str, tuple[str, int]]] = {
    "programs": {"title": ("text", 500), "organizer": ("text", 300), "fiscal_year": ("int", 9999),
                 "key_check": ("hex", 32), "certificate_rule": ("json", 2000), "created_at": ("stamp", 0),
                 "allowance_rate": ("real", 10_000_000), "retention_until": ("date", 0)},
    "sites": {"kind": ("code", 40), "address": ("text", 500)},
    "cohorts": {"number": ("int", 100_000), "title": ("text", 300), "site_id": ("ref", 0),
                "starts_on": ("date", 0), "ends_on": ("date", 0)},
    "sessions": {"cohort_id": ("ref", 0), "day": ("date", 0), "slot": ("code", 20), "opens_at": ("time", 0),
                 "closes_at": ("time", 0), "site_id": ("ref", 0), "title": ("text", 300), "status": ("code", 20)},
    "targets": {"cohort_id": ("ref", 0), "role": ("code", 40), "expected": ("int", 10_000_000),
                "area_name": ("text", 300)},
    "participants": {"cohort_id": ("ref", 0), "role": ("code", 40), "organization": ("text", 300),
                     "community": ("text", 300), "phone": ("text", 20), "nid_hash": ("hex", 64),
                     "nid_last4": ("text", 4), "status": ("code", 20), "source_key": ("text", 300),
                     "registered_via": ("code", 40), "created_at": ("stamp", 0), "consent_via": ("code", 20),
                     "consent_notice": ("text", 40), "consent_at": ("stamp", 0), "consent_by": ("text", 80)},
    "badges": {"participant_id": ("ref", 0), "code": ("badge", 64), "issued_at": ("stamp", 0),
               "revoked_at": ("stamp", 0)},
    "scans": {"participant_id": ("ref", 0), "session_id": ("ref", 0), "code": ("text", 200),
              "result": ("code", 40), "direction": ("code", 8), "device_id": ("ref", 0), "operator": ("text", 80),
              "at": ("stamp", 0), "nonce": ("text", 200), "via": ("code", 8), "note": ("text", 300)},
    "progress_entries": {"cohort_id": ("ref", 0), "period": ("text", 40), "problems": ("text", 5000),
                         "obstacles": ("text", 5000), "written_by": ("text", 80), "written_at": ("stamp", 0)},
    "erasures": {"reason": ("text", 300), "erased_at": ("stamp", 0), "erased_by": ("text", 80), "kind": ("code", 20)},
}
DEFAULT_RULE = ("text", 200)
# Fields that changes made before a release may still carry, accepted but never materialized:
# a program's key travelled in its row until keys left the change log (kiosk.trust.programkeys).
LEGACY_FIELDS: dict[str, dict[str, tuple[str, int]]] = {"programs": {"signing_key": ("hex", 64)}}
# Fields set once, by a row's first insert: a later change may repeat them but never alter them.
FIXED_FIELDS: dict[str, tuple[str, ...]] = {"programs": ("key_check",)}
# Fields a row needs when it is first inserted (its table's NOT NULL columns without a default).
REQUIRED: dict[str, tuple[str, ...]] = {
    "programs": ("title",), "sites": ("name",), "cohorts": ("number",), "sessions": ("cohort_id", "day"),
    "targets": ("expected",), "participants": ("first_name", "last_name"),
    "badges": ("participant_id", "code"), "scans": ("result", "device_id", "at"), "progress_entries": ("period",),
    "erasures": ("erased_at",),
}
# Reference fields: the row they name must belong to the same program.
REFERENCES = {"cohort_id": "cohorts", "site_id": "sites", "session_id": "sessions", "participant_id": "participants"}


@migrations(name="0001_initial")
def initial(db):
    db.executescript(
        """
        create table meta (key text primary key, value text not null);
        create table programs (
            id text primary key, program_id text not null, title text not null,
            organizer text, fiscal_year integer, signing_key text not null,
            certificate_rule text, created_at text
        );
        create table sites (
            id text primary key, program_id text not null references programs(id),
            name text not null, kind text not null default 'venue', address text
        );
        create table cohorts (
            id text primary key, program_id text not null references programs(id),
            number integer not null, title text, site_id text references sites(id),
            starts_on text, ends_on text
        );
        create unique index cohorts_number on cohorts(program_id, number);
        create table sessions (
            id text primary key, program_id text not null references programs(id),
            cohort_id text not null references cohorts(id), day text not null,
            slot text not null default 'day', opens_at text not null default '06:00',
            closes_at text not null default '18:00', site_id text references sites(id), title text
        );
        create index sessions_day on sessions(day);
        create table targets (
            id text primary key, program_id text not null references programs(id),
            cohort_id text references cohorts(id), role text, area_code text, area_name text,
            expected integer not null
        );
        create table participants (
            id text primary key, program_id text not null references programs(id),
            cohort_id text references cohorts(id), title text, first_name text not null,
            last_name text not null, role text not null default 'participant', position text,
            organization text, province_code text, district_code text, subdistrict_code text,
            community text, phone text, nid_hash text, nid_last4 text,
            status text not null default 'active', source_key text, registered_via text,
            created_at text
        );
        create index participants_cohort on participants(cohort_id);
        create index participants_source on participants(program_id, source_key);
        create table badges (
            id text primary key, program_id text not null references programs(id),
            participant_id text not null references participants(id), code text not null unique,
            issued_at text, revoked_at text
        );
        create index badges_participant on badges(participant_id);
        create table scans (
            id text primary key, program_id text not null references programs(id),
            participant_id text references participants(id), session_id text references sessions(id),
            code text, result text not null, direction text not null default 'in',
            device_id text not null, operator text, at text not null, nonce text
        );
        create unique index scans_nonce on scans(device_id, nonce) where nonce is not null;
        create index scans_session on scans(session_id, participant_id);
        create table attendance (
            participant_id text not null references participants(id),
            session_id text not null references sessions(id),
            program_id text not null, first_at text not null, first_scan_id text not null,
            last_out_at text,
            primary key (participant_id, session_id)
        );
        create index attendance_session on attendance(session_id);

        -- the change log of DESIGN.md "Sync": every origin's changes, per program partition
        create table changes (
            program_id text not null, origin text not null, seq integer not null,
            entity text not null, entity_id text not null, op text not null,
            payload text not null, hlc text not null,
            primary key (program_id, origin, seq)
        );
        create index changes_hlc on changes(program_id, hlc);
        create table vectors (
            program_id text not null, origin text not null, seq integer not null,
            primary key (program_id, origin)
        );
        create table row_clocks (
            entity text not null, entity_id text not null, clocks text not null,
            primary key (entity, entity_id)
        );
        create table tombstones (
            entity text not null, entity_id text not null, hlc text not null,
            primary key (entity, entity_id)
        );
        create table conflicts (
            id integer primary key, entity text not null, entity_id text not null,
            field text not null, kept_value text, kept_hlc text, lost_value text,
            lost_hlc text not null, lost_origin text, recorded_at text not null,
            resolved_at text
        );

        create table users (
            id text primary key, username text not null unique, display_name text,
            role text not null, password_hash text not null, token_hash text unique,
            created_at text not null
        );
        """
    )


@migrations(name="0002_reports")
def reports_fields(db):
    """Issue 9: the per-day allowance rate, paper check-ins (scans.via), progress-report notes.

    `certificate_rule` (JSON on programs) already exists; its shape is read by kiosk.reports.rules.
    """
    db.executescript(
        """
        alter table programs add column allowance_rate real;
        alter table scans add column via text;
        create table progress_entries (
            id text primary key, program_id text not null references programs(id),
            cohort_id text references cohorts(id), period text not null,
            problems text, obstacles text, written_by text, written_at text
        );
        create index progress_entries_program on progress_entries(program_id, period);
        """
    )


@migrations(name="0003_registration")
def registration_tablets(db):
    """Issue 8: registration tablets, their per-cohort settings, and submission keys.

    All three are local to this laptop, like `users`: a tablet is paired with one kiosk, a
    coordinator's settings are this venue's, and a key only de-duplicates what was sent here.
    The people they create travel through the change log as usual.
    """
    db.executescript(
        """
        create table tablets (
            id text primary key, cohort_id text not null references cohorts(id), label text not null,
            pair_code_hash text unique, pair_expires_at text, token_hash text unique,
            created_by text, created_at text not null, paired_at text, revoked_at text
        );
        create index tablets_cohort on tablets(cohort_id);
        create table registration_settings (
            cohort_id text primary key references cohorts(id),
            quota_mode text not null default 'refuse', checkin_on_register integer not null default 0,
            idle_seconds integer not null default 60
        );
        create table registration_keys (
            tablet_id text not null references tablets(id), key text not null,
            participant_id text references participants(id), status text not null,
            made_at text not null, created_at text not null,
            primary key (tablet_id, key)
        );
        create index participants_phone on participants(program_id, phone);
        create index participants_nid on participants(program_id, nid_hash);
        create index participants_area on participants(program_id, district_code);
        """
    )


@migrations(name="0004_signed_changes")
def signed_changes(db):
    """Issue 10: each change carries its origin's chain value and signature; public keys of the
    origins this replica has seen (each proven by its id, see kiosk.trust.keys)."""
    db.executescript(
        """
        alter table changes add column chain text;
        alter table changes add column sig text;
        create table origin_keys (origin text primary key, public_key text not null);
        """
    )


@migrations(name="0005_login_sessions")
def login_sessions(db):
    """Issue 10 (finding 8): logins kept on the server, so logging out ends every copy of a cookie.

    Local to this laptop, like `users`. `disabled_at` shuts an account out without deleting it.
    """
    db.executescript(
        """
        create table login_sessions (
            id text primary key, user_id text not null references users(id),
            created_at text not null, ended_at text
        );
        create index login_sessions_user on login_sessions(user_id);
        alter table users add column disabled_at text;
        """
    )


@migrations(name="0006_program_keys")
def program_keys(db):
    """Issue 10: a program's key leaves its synced row for a local table; the row keeps only a
    one-way `key_check` (kiosk.trust.programkeys). Keys of programs made before stay valid."""
    db.executescript(
        """
        create table program_keys (
            program_id text primary key, key text not null, via text not null, added_at text not null
        );
        insert into program_keys (program_id, key, via, added_at)
            select id, signing_key, 'legacy', coalesce(created_at, '') from programs where signing_key is not null;
        alter table programs drop column signing_key;
        alter table programs add column key_check text;
        """
    )


@migrations(name="0007_corrections")
def corrections(db):
    """A session removed by a coordinator stays, marked `removed` (scans on other devices may still
    name it, and its check-ins must not vanish); a correction of attendance by hand is a scan
    (`via` manual, result checked_in or undone) whose `note` says why."""
    db.executescript(
        """
        alter table sessions add column status text not null default 'active';
        alter table scans add column note text;
        """
    )


@migrations(name="0008_revocations")
def revocations(db):
    """Revocations the central server signed, kept on every kiosk: per origin of a
    revoked device, the last change of each program (`through`, JSON) past which its changes
    are refused; `entry` is the signed statement as it travels (sync.revocations)."""
    db.executescript(
        """
        create table revoked_origins (origin text primary key, through text not null, entry text not null);
        """
    )


@migrations(name="0009_tablet_guards")
def tablet_guards(db):
    """What keeps a public tablet honest, local to this laptop like the tablets themselves.

    `tablet_lookups`: each time a tablet was told that what it typed matches someone registered,
    for the lockouts per tablet and per person (kiosk.people.tablets); `tablets.resumed_at`: when
    a coordinator last resumed a paused tablet; `tablets.roles`: the roles a walk-in may choose there;
    `registration_settings.capacity`: the seats of a cohort, past which walk-ins are refused or
    wait; `contacts`: the spans of time a tablet or a scan page kept reaching the laptop, against which the times of its queued work are checked.
    """
    db.executescript(
        """
        create table tablet_lookups (
            tablet_id text not null references tablets(id), participant_id text not null, at text not null
        );
        create index tablet_lookups_tablet on tablet_lookups(tablet_id, at);
        create index tablet_lookups_person on tablet_lookups(participant_id, at);
        alter table tablets add column resumed_at text;
        alter table tablets add column roles text not null default 'participant';
        alter table registration_settings add column capacity integer;
        create table contacts (device text not null, started_at text not null, last_at text not null);
        create index contacts_device on contacts(device, last_at);
        """
    )


@migrations(name="0010_privacy")
def privacy(db):
    """PDPA: erasures (synced, append-only), how each person's data came in (consent), each
    program's retention date, and when a person's values were erased here (`erased_at`, derived
    from the erasures like attendance from the scans)."""
    db.executescript(
        """
        create table erasures (
            id text primary key, program_id text not null references programs(id),
            reason text, erased_at text not null, erased_by text, kind text not null default 'request'
        );
        alter table participants add column consent_via text;
        alter table participants add column consent_notice text;
        alter table participants add column consent_at text;
        alter table participants add column consent_by text;
        alter table participants add column erased_at text;
        alter table programs add column retention_until text;
        create index changes_people on changes(entity_id) where entity = 'participants';
        """
    )
