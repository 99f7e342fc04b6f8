"""Central's schema under Alembic: a database made by main at 4458c02 (before Alembic and the
typed read tables; tests/data/make_central_4458c02.py) upgrades on SQLite and PostgreSQL, keeps
every change, device and account, states its revoked device's origin, and gets read tables equal
to a replay of its change log."""

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text

from sync import revocations
from sync.central import migrations
from sync.central.storage import Storage
from sync.central.storage.tables import READ_TABLES, area_counts, participants

DATA = Path(__file__).parent / "data"
OLD = {"changes": 1581, "scans": 848, "attendance": 848, "people": 354}


def old_sqlite(tmp_path) -> str:
    with gzip.open(DATA / "central-4458c02.db.gz") as packed, open(tmp_path / "old.db", "wb") as out:
        shutil.copyfileobj(packed, out)
    return f"sqlite:///{tmp_path / 'old.db'}"


def old_postgres(cluster) -> str:
    url = cluster.new_database()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, "/usr/lib/postgresql/15/bin/psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                    "-p", str(cluster.port), "-U", "postgres", "-d", url.rsplit("/", 1)[1], "-f", "-"],
                   input=gzip.decompress((DATA / "central-4458c02.pg.sql.gz").read_bytes()), check=True,
                   capture_output=True)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_database(request, tmp_path):
    """The URL of a central database as 4458c02 left it, not yet upgraded."""
    if request.param == "sqlite":
        return old_sqlite(tmp_path)
    return old_postgres(request.getfixturevalue("postgres_cluster"))


def read_tables(storage) -> dict:
    """Every typed row, count and attendance counter, comparable across two databases."""
    out = {}
    with storage.engine.connect() as conn:
        for name, table in READ_TABLES.items():
            out[name] = sorted(tuple(r) for r in conn.execute(select(table).order_by(table.c.id)))
        out["area_counts"] = sorted(tuple(r) for r in conn.execute(select(area_counts)))
    return out


def test_a_database_of_4458c02_upgrades_keeping_every_change_device_and_account(old_database, tmp_path):
    with _engine(old_database) as conn:
        assert "alembic_version" not in _tables(conn) and "fields" in _tables(conn)
    storage = Storage(old_database)
    with storage.engine.connect() as conn:
        assert migrations.current(conn) == migrations.scripts().get_current_head()
        assert "fields" not in _tables(conn)
    assert storage.change_count() == OLD["changes"]
    assert len(storage.scan_ids()) == OLD["scans"] and storage.attendance_count() == OLD["attendance"]
    devices = storage.device_list()
    assert len(devices) == 2 and sum(bool(d["revoked_at"]) for d in devices) == 1
    revoked = next(d for d in devices if d["revoked_at"])
    statements = [revocations.checked(e, {storage.server_id}) for e in storage.revocation_entries()]
    assert [(s["device"], s["revoked_at"]) for s in statements] == [(revoked["id"], revoked["revoked_at"])]
    assert storage.authenticate("office", "password123")["username"] == "office"
    assert sum(len(storage.entity_rows(p, "participants")) for p in storage.programs()) == OLD["people"]
    code_holder = storage.create_enrol_code("after the upgrade")
    assert storage.enrol(code_holder)["device_id"]
    storage.close()
    assert Storage(old_database).change_count() == OLD["changes"]  # a second start upgrades nothing


def test_the_upgrade_builds_the_read_tables_a_replay_of_the_change_log_builds(old_database, tmp_path):
    upgraded = Storage(old_database)
    fresh = Storage(f"sqlite:///{tmp_path / 'fresh.db'}")
    for program_id in sorted(upgraded.programs()):
        rows, _more = upgraded.pull(program_id, {}, limit=10_000)
        fresh.push(program_id, rows, source="replay", keys=upgraded.keys_for(c["origin"] for c in rows))
    assert read_tables(upgraded) == read_tables(fresh)
    with upgraded.engine.connect() as conn:
        came = conn.execute(select(participants.c.id).where(participants.c.attended > 0)).all()
        registered = conn.execute(text("select sum(registered), sum(attended) from area_counts")).one()
    assert len(came) == registered[1] and registered[0] == OLD["people"]
    upgraded.close()
    fresh.close()


def _engine(url):
    from sqlalchemy import create_engine

    return create_engine(url).connect()


def _tables(conn) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())
