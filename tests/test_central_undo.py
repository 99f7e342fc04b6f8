"""A check-in undone by hand counts on central as on the kiosk, whatever order the scans arrive
in: central's attendance, each person's count and the dashboard's area counts are the kiosk's,
on SQLite and PostgreSQL, and with two servers ingesting at once."""

import itertools
import json
import threading

import pytest
from sqlalchemy import select, text

from kiosk.clock import new_id
from kiosk.store import changes
from sync import replica
from sync.central.storage import Storage
from sync.central.storage.tables import participants

from support import Kiosk

DAY = "2026-03-01T"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_url(request, tmp_path):
    """Makes the URL of a new, empty central database each call."""
    made = iter(range(1000))
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'central-{next(made)}.db'}"
    cluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database


def correction(kiosk: Kiosk, program: dict, person: str, session: str, result: str, at: str) -> str:
    """A coordinator's correction by hand, as `kiosk.people.participants` writes it (a scan, via manual)."""
    scan_id = new_id()
    changes.write(kiosk.db, program["program_id"], "scans", scan_id, {
        "participant_id": person, "session_id": session, "code": None, "result": result, "direction": "in",
        "device_id": kiosk.device_id, "operator": "chief", "at": DAY + at, "nonce": scan_id, "via": "manual",
        "note": "บัตรของคนอื่น" if result == "undone" else "ลืมบัตร"})
    return scan_id


def handed(source: Kiosk, *targets: Kiosk, program_id: str) -> None:
    """Every change `source` holds of the program, applied on each target."""
    batch = changes.changes_since(source.db, program_id, {}, limit=-1)
    for target in targets:
        replica.apply_batch(target.db, program_id, batch, source.keys())


@pytest.fixture
def venue(tmp_path):
    """An office that made the program; doors A and B scanning; a coordinator's laptop undoing
    and marking by hand; a hub that receives everything (what a kiosk derives)."""
    office, a, b, chief, hub = (Kiosk(tmp_path / name) for name in ("office", "a", "b", "chief", "hub"))
    program = office.create_program(sessions=2)
    people = office.register(program, 6)
    handed(office, a, b, chief, hub, program_id=program["program_id"])
    s0, s1 = program["sessions"]
    p = people
    if True:
        a.scan(program, p[0], s0, at=DAY + "09:00:00.000Z")  # undone at 10:00, then B's 11:00 counts
        correction(chief, program, p[0], s0, "undone", "10:00:00.000Z")
        b.scan(program, p[0], s0, at=DAY + "11:00:00.000Z")
        a.scan(program, p[1], s0, at=DAY + "09:00:00.000Z")  # undone, and nothing after
        correction(chief, program, p[1], s0, "undone", "10:00:00.000Z")
        b.scan(program, p[2], s0, at=DAY + "09:30:00.000Z")  # B's before the undo, A's after it
        correction(chief, program, p[2], s0, "undone", "10:00:00.000Z")
        a.scan(program, p[2], s0, at=DAY + "10:30:00.000Z")
        correction(chief, program, p[3], s1, "undone", "10:00:00.000Z")  # an undo, a check-in before it
        a.scan(program, p[3], s1, at=DAY + "09:00:00.000Z")
        correction(chief, program, p[1], s1, "checked_in", "10:15:00.000Z")  # marked present by hand
        a.scan(program, p[4], s1, at=DAY + "08:00:00.000Z")  # two undos; the check-in after the last
        correction(chief, program, p[4], s1, "undone", "09:00:00.000Z")
        b.scan(program, p[4], s1, at=DAY + "09:30:00.000Z")
        correction(chief, program, p[4], s1, "undone", "10:00:00.000Z")
        a.scan(program, p[4], s1, at=DAY + "10:30:00.000Z")
        a.scan(program, p[5], s1, at=DAY + "10:00:00.000Z")  # no undo: the earliest of two doors
        b.scan(program, p[5], s1, at=DAY + "09:45:00.000Z")
    for kiosk in (a, b, chief):
        handed(kiosk, hub, program_id=program["program_id"])
    yield {"office": office, "doors": {"a": a, "b": b, "chief": chief}, "hub": hub, "program": program,
           "people": people}
    for kiosk in (office, a, b, chief, hub):
        kiosk.close()


def push_from(kiosk: Kiosk, storage: Storage, program_id: str, limit: int = 500) -> None:
    """What a sync of `kiosk` pushes, in batches of at most `limit` changes."""
    more = True
    while more:
        batch, more = changes.batch_since(kiosk.db, program_id, storage.vector(program_id), limit)
        if batch:
            storage.push(program_id, batch, source="test", keys=kiosk.keys())


def on_kiosk(kiosk: Kiosk) -> dict:
    """Attendance as the kiosk derives it, and per person the sessions they came to."""
    rows = kiosk.db.execute("select participant_id, session_id, first_scan_id from attendance").fetchall()
    return {"attendance": sorted(tuple(r) for r in rows),
            "attended": dict(kiosk.db.execute("select participant_id, count(*) from attendance"
                                              " group by participant_id").fetchall())}


def on_central(storage: Storage) -> dict:
    with storage.engine.connect() as conn:
        rows = conn.execute(text("select participant_id, session_id, first_scan_id from attendance")).all()
        attended = dict(conn.execute(select(participants.c.id, participants.c.attended)
                                     .where(participants.c.attended > 0)).all())
        counts = tuple(conn.execute(text("select sum(registered), sum(attended) from area_counts")).one())
    return {"attendance": sorted(tuple(r) for r in rows), "attended": attended, "counts": counts}


def expected(venue) -> dict:
    found = on_kiosk(venue["hub"])
    return {**found, "counts": (len(venue["people"]), len(found["attended"]))}


def test_the_kiosk_derives_what_each_correction_says(venue):
    p, (s0, s1) = venue["people"], venue["program"]["sessions"]
    came = {(person, session) for person, session, _scan in on_kiosk(venue["hub"])["attendance"]}
    assert came == {(p[0], s0), (p[2], s0), (p[1], s1), (p[4], s1), (p[5], s1)}
    firsts = dict(((r[0], r[1]), r[2]) for r in venue["hub"].db.execute(
        "select a.participant_id, a.session_id, s.at from attendance a join scans s on s.id = a.first_scan_id"))
    assert firsts[(p[0], s0)] == DAY + "11:00:00.000Z" and firsts[(p[4], s1)] == DAY + "10:30:00.000Z"
    assert firsts[(p[5], s1)] == DAY + "09:45:00.000Z"


@pytest.mark.parametrize("order", list(itertools.permutations("abc")) + [("hub",)])
def test_central_counts_corrections_as_the_kiosk_whatever_order_they_arrive_in(venue, new_url, order):
    storage = Storage(new_url())
    pid = venue["program"]["program_id"]
    push_from(venue["office"], storage, pid)
    for name in order:  # each door's scans after the others', or (the hub) all in one batch
        kiosk = venue["hub"] if name == "hub" else venue["doors"][{"c": "chief"}.get(name, name)]
        push_from(kiosk, storage, pid, limit=3 if name == "a" else 500)
    assert on_central(storage) == expected(venue)
    storage.close()


def test_a_correction_keeps_who_made_it_and_why_on_central(venue, new_url):
    storage = Storage(new_url())
    pid = venue["program"]["program_id"]
    push_from(venue["hub"], storage, pid)
    with storage.engine.connect() as conn:
        kept = conn.execute(text("select result, operator, note from scans where via = 'manual'")).all()
    assert sorted(tuple(r) for r in kept) == sorted(
        tuple(r) for r in venue["hub"].db.execute("select result, operator, note from scans where via = 'manual'"))
    assert len(kept) == 7
    storage.close()


@pytest.mark.postgres
def test_two_servers_ingesting_doors_and_corrections_at_once_agree_with_the_kiosk(tmp_path, postgres_cluster):
    """Two Storage engines (as two server processes) on one PostgreSQL take the doors' check-ins
    and the coordinator's undos of the same people at the same moment, many times over."""
    office, door, chief, hub = (Kiosk(tmp_path / name) for name in ("office", "door", "chief", "hub"))
    program = office.create_program(sessions=1)
    pid, (session,) = program["program_id"], program["sessions"]
    people = office.register(program, 120)
    handed(office, door, chief, hub, program_id=pid)
    url = postgres_cluster.new_database()
    first, second = Storage(url), Storage(url)
    push_from(office, first, pid)
    if True:
        for n, person in enumerate(people):
            minute = f"{n % 60:02d}"
            door.scan(program, person, session, at=f"{DAY}09:{minute}:00.000Z")
            correction(chief, program, person, session, "undone", f"10:{minute}:00.000Z")
            if n % 3 == 0:
                door.scan(program, person, session, at=f"{DAY}11:{minute}:00.000Z")
    handed(door, hub, program_id=pid)
    handed(chief, hub, program_id=pid)
    errors = []

    def push(kiosk, storage):
        try:
            push_from(kiosk, storage, pid, limit=7)
        except Exception as exc:  # noqa: BLE001 - reported below with the test's assertion
            errors.append(exc)
    threads = [threading.Thread(target=push, args=args) for args in ((door, first), (chief, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert on_central(first) == expected({"hub": hub, "people": people})
    assert len(on_central(first)["attendance"]) == 40
    for kiosk in (office, door, chief, hub):
        kiosk.close()
    first.close()
    second.close()


def _as_at_0002(storage: Storage, conn) -> None:
    """Takes a central database back to revision 0002, as the code of that day left it: no
    statements of revoked origins, no undos (attendance is the earliest check-in, undone or
    not), no session status, scans without who made them or why, nothing of privacy (0005)."""
    conn.exec_driver_sql("DELETE FROM attendance")
    conn.exec_driver_sql(
        "INSERT INTO attendance (program_id, participant_id, session_id, first_at, first_scan_id)"
        " SELECT program_id, participant_id, session_id, at, id FROM scans s WHERE result = 'checked_in'"
        " AND NOT EXISTS (SELECT 1 FROM scans t WHERE t.program_id = s.program_id AND t.result = 'checked_in'"
        " AND t.participant_id = s.participant_id AND t.session_id = s.session_id"
        " AND (t.at < s.at OR (t.at = s.at AND t.id < s.id)))")
    storage.rebuild_counts(conn)
    for name in ("undos", "revoked_origins", "erasures"):
        conn.exec_driver_sql(f"DROP TABLE {name}")
    for index in ("scans_person", "changes_people"):
        conn.exec_driver_sql(f"DROP INDEX {index}")
    for table, column in (("scans", "operator"), ("scans", "note"), ("sessions", "status"), ("programs", "retention_until"),
                          *(("participants", c) for c in ("consent_via", "consent_notice", "consent_at", "consent_by",
                                                          "erased_at"))):
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'")
    for table, gone in (("participants", ("consent_via", "consent_notice", "consent_at", "consent_by")),
                        ("programs", ("retention_until",))):  # no stamps of columns that day had not
        for row_id, clocks in conn.exec_driver_sql(f"SELECT id, clocks FROM {table}").all():
            kept = {k: v for k, v in json.loads(clocks).items() if k not in gone}
            conn.execute(text(f"UPDATE {table} SET clocks = :clocks WHERE id = :id"),
                         {"clocks": json.dumps(kept, sort_keys=True, separators=(",", ":")), "id": row_id})


def test_a_database_at_0002_holding_corrections_upgrades_to_what_the_kiosk_counts(venue, new_url, tmp_path):
    from test_central_migrations import read_tables

    url, pid = new_url(), venue["program"]["program_id"]
    storage = Storage(url)
    push_from(venue["hub"], storage, pid)
    with storage.write() as conn:
        _as_at_0002(storage, conn)
        before = conn.exec_driver_sql("SELECT count(*) FROM attendance").scalar()
    storage.close()
    assert before == 7  # the undone check-ins counted
    upgraded = Storage(url)
    replayed = Storage(f"sqlite:///{tmp_path / 'replayed.db'}")
    push_from(venue["hub"], replayed, pid)
    assert on_central(upgraded) == expected(venue)
    assert read_tables(upgraded) == read_tables(replayed)
    with upgraded.engine.connect() as conn:
        kept = conn.execute(text("select result, operator, note from scans where via = 'manual'")).all()
    assert len(kept) == 7 and {r.operator for r in kept} == {"chief"}
    upgraded.close()
    replayed.close()
