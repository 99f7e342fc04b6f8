"""The change log: every domain row is reproducible from it; merges are per field by HLC."""

from datetime import date

import pytest

from kiosk.clock import HybridClock, new_id
from kiosk.program import events
from kiosk.program.demo import create_demo
from kiosk.store import changes
from kiosk.store.db import device_id, open_data_dir, transaction
from kiosk.store.schema import ENTITIES

DOMAIN_TABLES = [*ENTITIES, *changes.DERIVED_TABLES]


def table_rows(db, table):
    return sorted(tuple(r.values()) for r in db.query(f"select * from {table}"))


def test_every_domain_table_is_reproducible_from_the_log_alone(db, data_dir, tmp_path):
    create_demo(db, data_dir, date(2026, 11, 21))
    program = events.programs(db)[0]
    session = db.execute("select id from sessions limit 1").fetchone()[0]
    person = db.execute("select id from participants limit 1").fetchone()[0]
    changes.write(db, program["id"], "scans", new_id(), {"participant_id": person, "session_id": session,
                  "result": "checked_in", "direction": "in", "device_id": "d", "at": "2026-11-21T01:00:00.000Z"})
    events.split_day(db, db.execute("select id from sessions where day = '2026-11-22'").fetchone()[0])
    replica = open_data_dir(tmp_path / "replica")
    assert changes.rebuild(db, replica) == db.execute("select count(*) from changes").fetchone()[0]
    for table in DOMAIN_TABLES:
        assert table_rows(replica, table) == table_rows(db, table), table
    assert table_rows(db, "attendance")


def test_every_domain_table_is_written_only_through_the_log(db, data_dir):
    """No row without a change: each domain row's id appears in the change log."""
    create_demo(db, data_dir, date(2026, 11, 21))
    for table in ENTITIES:
        unlogged = db.execute(
            f"select count(*) from {table} t where not exists (select 1 from changes c"
            f" where c.entity = ? and c.entity_id = t.id)", [table]).fetchone()[0]
        assert unlogged == 0, table


def test_seq_is_gap_free_per_program_and_origin(db):
    first = events.create_program(db, "one")
    second = events.create_program(db, "two")
    events.add_cohort(db, first, 1, date(2030, 1, 1), 3)
    for program in (first, second):
        seqs = [r[0] for r in db.execute("select seq from changes where program_id = ? order by seq", [program])]
        assert seqs == list(range(1, len(seqs) + 1))


def test_a_failed_write_leaves_neither_row_nor_change(db):
    program = events.create_program(db, "one")
    before = db.execute("select count(*) from changes").fetchone()[0]
    with pytest.raises(Exception):
        with transaction(db):
            events.add_site(db, program, "hall")
            raise RuntimeError("crash before commit")
    assert db.execute("select count(*) from changes").fetchone()[0] == before
    assert db.execute("select count(*) from sites").fetchone()[0] == 0


def _own_history(db, program):
    origin = device_id(db)
    rows = db.execute(f"select {changes._COLUMNS} from changes where program_id = ? and origin = ? order by seq",
                      [program, origin]).fetchall()
    return origin, [changes.change_from_row(r) for r in rows]


def test_a_write_after_an_undone_savepoint_continues_the_signed_history(db):
    """A transaction keeps the origin's last change once read (held_facts); a savepoint rolled
    back must not leave it pointing at a change that was undone."""
    program = events.create_program(db, "one")
    with transaction(db):
        events.add_site(db, program, "hall")
        with pytest.raises(RuntimeError):
            with transaction(db):
                events.add_site(db, program, "undone")
                raise RuntimeError("the inner write fails")
        events.add_site(db, program, "kept")
    origin, history = _own_history(db, program)
    assert [c["seq"] for c in history] == list(range(1, len(history) + 1))
    assert changes.signed_by_origin(db, program, origin, history)
    assert {r[0] for r in db.execute("select name from sites")} == {"hall", "kept"}


def test_one_transaction_asks_for_the_device_and_the_last_change_once(db):
    program = events.create_program(db, "one")
    asked = []
    db.conn.set_trace_callback(asked.append)
    with transaction(db):
        for name in ("a", "b", "c"):
            events.add_site(db, program, name)
    db.conn.set_trace_callback(None)
    assert sum("key = 'device_id'" in sql for sql in asked) == 1
    assert sum(sql.startswith("select v.seq") for sql in asked) == 1
    assert sum("into origin_keys" in sql for sql in asked) == 1
    origin, history = _own_history(db, program)
    assert changes.signed_by_origin(db, program, origin, history)


def _replica(tmp_path, name):
    return open_data_dir(tmp_path / name)


def _copy_all(source, target):
    with transaction(target):
        changes.remember_keys(target, dict(source.execute("select origin, public_key from origin_keys").fetchall()))
        for program_id, in source.execute("select distinct program_id from changes").fetchall():
            for change in changes.changes_since(source, program_id, changes.vector(target, program_id), -1):
                changes.apply_change(target, change)


def test_concurrent_edits_merge_per_field_and_log_the_loser(tmp_path):
    a, b = _replica(tmp_path, "a"), _replica(tmp_path, "b")
    program = events.create_program(a, "p")
    site = events.add_site(a, program, "hall")
    _copy_all(a, b)
    edit_a = changes.write(a, program, "sites", site, {"name": "hall A"})
    edit_b = changes.write(b, program, "sites", site, {"name": "hall B", "address": "Bangkok"})
    _copy_all(a, b)
    _copy_all(b, a)
    winner, loser = ("hall A", "hall B") if edit_a["hlc"] > edit_b["hlc"] else ("hall B", "hall A")
    row_a = a.execute("select name, address from sites").fetchone()
    assert row_a == b.execute("select name, address from sites").fetchone()
    assert row_a == (winner, "Bangkok")  # the later HLC wins the name; the address had no rival
    for replica in (a, b):
        assert replica.execute("select field, lost_value, kept_value from conflicts").fetchall() == [("name", loser, winner)]


def test_sequential_edits_from_two_devices_are_not_conflicts(tmp_path):
    a, b = _replica(tmp_path, "a"), _replica(tmp_path, "b")
    program = events.create_program(a, "p")
    site = events.add_site(a, program, "hall")
    _copy_all(a, b)
    changes.write(b, program, "sites", site, {"name": "hall 2"})
    _copy_all(b, a)
    changes.write(a, program, "sites", site, {"name": "hall 3"})
    _copy_all(a, b)
    assert a.execute("select count(*) from conflicts").fetchone()[0] == 0
    assert b.execute("select name from sites").fetchone()[0] == "hall 3"


def test_two_devices_scanning_one_person_count_one_attendance(tmp_path):
    a, b = _replica(tmp_path, "a"), _replica(tmp_path, "b")
    program = events.create_program(a, "p")
    cohort = events.add_cohort(a, program, 1, date(2030, 1, 1))
    session = events.sessions(a, cohort)[0]["id"]
    person = new_id()
    changes.write(a, program, "participants", person, {"cohort_id": cohort, "first_name": "ก", "last_name": "ข"})
    _copy_all(a, b)
    for replica, at in ((a, "2030-01-01T01:00:05.000Z"), (b, "2030-01-01T01:00:01.000Z")):
        changes.write(replica, program, "scans", new_id(), {"participant_id": person, "session_id": session,
                      "result": "checked_in", "direction": "in", "device_id": "x", "at": at})
    _copy_all(a, b)
    _copy_all(b, a)
    for replica in (a, b):
        assert replica.execute("select count(*) from scans").fetchone()[0] == 2
        assert replica.execute("select first_at from attendance").fetchall() == [("2030-01-01T01:00:01.000Z",)]


def test_a_resent_change_is_a_no_op_and_a_gap_is_refused(tmp_path):
    a, b = _replica(tmp_path, "a"), _replica(tmp_path, "b")
    program = events.create_program(a, "p")
    events.add_site(a, program, "one")
    events.add_site(a, program, "two")
    log = changes.changes_since(a, program, {}, -1)
    with transaction(b):
        changes.remember_keys(b, changes.keys_for(a, [log[0]["origin"]]))
        assert changes.apply_change(b, log[0])
        assert not changes.apply_change(b, log[0])
    with pytest.raises(changes.ChangeError) as caught:
        with transaction(b):
            changes.apply_change(b, log[2])
    assert caught.value.reason == "seq_gap"


@pytest.mark.parametrize("mutation, reason", [
    ({"entity": "users"}, "unknown_entity"),
    ({"payload": {"password_hash": "x"}}, "unknown_field"),
    ({"payload": "not an object"}, "bad_change"),
    ({"seq": 0}, "bad_change"),
    ({"op": "drop"}, "bad_change"),
])
def test_malformed_changes_are_refused_by_reason(db, mutation, reason):
    change = {"program_id": "p", "origin": "o", "seq": 1, "entity": "sites", "id": "s", "op": "upsert",
              "payload": {"name": "x"}, "hlc": "0000000000001-00000-o", **mutation}
    with pytest.raises(changes.ChangeError) as caught:
        changes.validate(change)
    assert caught.value.reason == reason


def test_hybrid_clock_stays_ahead_of_what_it_observed_even_when_the_wall_clock_is_behind():
    clock = HybridClock("dev", wall=lambda: 1000)
    clock.observe("0000000005000-00007-other")
    assert clock.tick() == "0000000005000-00008-dev"
    assert clock.tick() > "0000000005000-00008-dev"


def test_scans_are_events_and_a_delete_of_one_is_refused(db):
    change = {"program_id": "p", "origin": "o", "seq": 1, "entity": "scans", "id": "s", "op": "delete",
              "payload": {}, "hlc": "0000000000001-00000-o"}
    with pytest.raises(changes.ChangeError) as caught:
        changes.validate(change)
    assert caught.value.reason == "bad_change"
