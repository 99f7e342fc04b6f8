"""A program's key never travels in the change log or a bundle: kiosks get it from the central
server or a paired laptop, checked against the program's signed row, or on paper; bundles are
sealed for the program, so a lost USB stick gives away no name or phone."""

import gzip
import json

import pytest

from kiosk.badges.codes import verify_code
from kiosk.badges.issuing import issue_badge
from kiosk.door.checkin import CheckinError, check_in
from kiosk.store import changes
from kiosk.store.db import open_data_dir, transaction
from kiosk.trust import programkeys
from sync import bundle
from sync.client import enrol as pair
from sync.client import sync_once
from sync.protocol import SyncError
from sync.state import SyncState

from support import Kiosk, PeerServer, bangkok, enrol, sync_post


def _badge(kiosk: Kiosk, person_id: str) -> str:
    with transaction(kiosk.db):
        person = dict(next(kiosk.db.query("select * from participants where id = ?", [person_id])))
        return issue_badge(kiosk.db, person)


def _key(kiosk: Kiosk, program: dict) -> str | None:
    return programkeys.key_of(kiosk.db, program["program_id"])


def test_a_new_programs_key_is_in_no_change_and_its_bundle_shows_no_name_or_phone(tmp_path):
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    person = door.register(program, 1, prefix="ประเสริฐ")[0]
    door.edit(program, person, phone="0812345678")
    _badge(door, person)
    key = _key(door, program)
    log = "".join(row[0] for row in door.db.execute("select payload from changes"))
    assert "ประเสริฐ" in log  # the log holds the person, as it must
    assert key not in log and programkeys.format_key(key) not in log
    check = door.db.execute("select key_check from programs").fetchone()[0]
    assert programkeys.matches(key, check) and not programkeys.matches(programkeys.new_key(), check)
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door.db, path)
    raw = gzip.decompress(path.read_bytes())
    for secret in (key, programkeys.format_key(key), "ประเสริฐ", "0812345678", "ใจดี"):
        assert secret.encode() not in raw, secret
    manifest = json.loads(raw.split(b"\n", 1)[0])
    assert manifest["programs"][program["program_id"]]["key_check"] == check
    door.close()


def test_the_central_server_hands_the_key_to_the_kiosks_of_its_program_only(tmp_path, central):
    door_a = Kiosk(tmp_path / "door-a")
    program, other = door_a.create_program(), door_a.create_program()
    person = door_a.register(program, 1)[0]
    code = _badge(door_a, person)
    enrol(door_a, central.url, central.storage())
    sync_once(door_a.data_dir)  # the program's row first, then its key (checked against the row)
    assert central.storage().program_key(program["program_id"]) == _key(door_a, program)
    door_b = Kiosk(tmp_path / "door-b")
    enrol(door_b, central.url, central.storage(), programs=[program["program_id"]])
    sync_once(door_b.data_dir)
    assert _key(door_b, program) == _key(door_a, program)
    assert _key(door_b, other) is None
    assert verify_code(code, programkeys.program_keys(door_b.db)) == program["program_id"]
    door_a.close()
    door_b.close()


def _signed_hello(url, creds, body: dict) -> dict:
    from sync.protocol import PROTOCOL, dumps
    return sync_post(url, "hello", dumps({"protocol": PROTOCOL, **body}), creds).json()


def test_a_device_that_offers_a_wrong_key_plants_nothing(tmp_path, central):
    door_a = Kiosk(tmp_path / "door-a")
    program, other = door_a.create_program(), door_a.create_program()
    storage = central.storage()
    for pid in (program["program_id"], other["program_id"]):  # central holds the rows, not the keys
        storage.push(pid, changes.changes_since(door_a.db, pid, {}, limit=-1), source="test", keys=door_a.keys())
    pid = program["program_id"]
    hostile = enrol(Kiosk(tmp_path / "hostile"), central.url, storage, programs=[pid])
    forged = {pid: programkeys.new_key(), other["program_id"]: _key(door_a, other)}
    answer = _signed_hello(central.url, hostile, {"programs": {pid: {}}, "program_keys": forged})
    assert answer["program_keys"] == {}
    assert storage.program_key(pid) is None  # a wrong key for its own program: refused by the check
    assert storage.program_key(other["program_id"]) is None  # a right key, but not its program's to give
    assert _signed_hello(central.url, hostile, {"programs": {pid: {}, other["program_id"]: {}}})["program_keys"] == {}
    enrol(door_a, central.url, storage)
    sync_once(door_a.data_dir)
    assert storage.program_key(pid) == _key(door_a, program)
    answer = _signed_hello(central.url, hostile, {"programs": {pid: {}, other["program_id"]: {}}})
    assert answer["program_keys"] == {pid: _key(door_a, program)}  # its own program's, and no other
    door_a.close()


def test_a_kiosk_forgets_a_key_that_its_programs_row_does_not_commit_to(tmp_path):
    door_a = Kiosk(tmp_path / "door-a")
    program = door_a.create_program()
    pid = program["program_id"]
    fresh = Kiosk(tmp_path / "fresh")
    with transaction(fresh.db):  # offered before the row arrived: kept until it can be checked
        assert programkeys.offered(fresh.db, {pid: programkeys.new_key()}, via="peer") == 1
    from sync import replica
    replica.apply_batch(fresh.db, pid, changes.changes_since(door_a.db, pid, {}, limit=-1), door_a.keys())
    assert _key(fresh, program) is None  # forgotten as the row arrived
    with transaction(fresh.db):
        assert programkeys.drop_wrong(fresh.db, pid) == 0
        assert programkeys.offered(fresh.db, {pid: _key(door_a, program)}, via="peer") == 1
    assert _key(fresh, program) == _key(door_a, program)
    door_a.close()
    fresh.close()


def test_a_paired_laptop_gets_the_key_and_checks_in_the_badges_made_next_door(tmp_path):
    door_a = Kiosk(tmp_path / "laptop-a")
    program = door_a.create_program()
    person = door_a.register(program, 1)[0]
    code = _badge(door_a, person)
    with PeerServer(door_a.data_dir) as server:
        door_b = Kiosk(tmp_path / "laptop-b")
        pair(door_b.data_dir, server.url, SyncState(door_a.data_dir).create_pair_code(), kind="peer")
        sync_once(door_b.data_dir, url=server.url)
    assert _key(door_b, program) == _key(door_a, program)
    door_b.reopen()
    day = door_b.db.execute("select day from sessions order by day limit 1").fetchone()[0]
    result = check_in(door_b.db, code, at=bangkok(day, "09:00"), device="laptop-b", nonce="n1")
    assert result.status == "checked_in"
    door_a.close()
    door_b.close()


def test_a_kiosk_with_the_program_but_not_its_key_says_so_at_the_door(tmp_path):
    door_a = Kiosk(tmp_path / "door-a")
    program = door_a.create_program()
    code = _badge(door_a, door_a.register(program, 1)[0])
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door_a.db, path)
    door_b = Kiosk(tmp_path / "door-b")
    bundle.import_kiosk(door_b.db, path, trust_new=True, program_key=_key(door_a, program))
    with transaction(door_b.db):
        door_b.db.execute("delete from program_keys")  # e.g. a program that came without its key
    day = door_b.db.execute("select day from sessions order by day limit 1").fetchone()[0]
    with pytest.raises(CheckinError) as refused:
        check_in(door_b.db, code, at=bangkok(day, "09:00"), device="door-b", nonce="n1")
    assert refused.value.reason == "program_key_missing"
    door_a.close()
    door_b.close()


def test_a_bundle_opens_only_with_its_programs_key(tmp_path):
    door_a = Kiosk(tmp_path / "door-a")
    program, other = door_a.create_program(), door_a.create_program()
    door_a.register(program, 2)
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door_a.db, path, [program["program_id"]])
    door_b = Kiosk(tmp_path / "door-b")
    for typed, reason in ((None, "program_key_missing"), (_key(door_a, other), "bad_program_key")):
        with pytest.raises(SyncError) as refused:
            bundle.import_kiosk(door_b.db, path, trust_new=True, program_key=typed)
        assert refused.value.reason == reason
        assert door_b.table("participants") == [] and door_b.table("program_keys") == []
    with pytest.raises(programkeys.ProgramKeyError) as garbled:
        bundle.import_kiosk(door_b.db, path, trust_new=True, program_key="ABCD-EFGH")
    assert garbled.value.reason == "bad_program_key"
    result = bundle.import_kiosk(door_b.db, path, trust_new=True,
                                 program_key=programkeys.format_key(_key(door_a, program)))
    assert result["applied"] == len(door_a.db.execute("select 1 from changes where program_id = ?",
                                                      [program["program_id"]]).fetchall())
    assert _key(door_b, program) == _key(door_a, program)
    door_a.close()
    door_b.close()


def test_a_program_made_before_keys_left_the_log_keeps_its_key(tmp_path):
    """A database at migration 0005 holds the key in `programs.signing_key`; after the upgrade
    the key is in `program_keys`, the column is gone, and its old badges still verify."""
    import sqlite3

    from kiosk.badges.codes import make_code

    folder = tmp_path / "old"
    folder.mkdir()
    open_data_dir(folder).close()
    raw = sqlite3.connect(folder / "kiosk.db")
    raw.executescript(f"""
        delete from _sqlite_migrations where name = '0006_program_keys';
        drop table program_keys;
        alter table programs drop column key_check;
        alter table programs add column signing_key text;
        insert into programs (id, program_id, title, signing_key) values ('p-old', 'p-old', 'เก่า', '{"ab" * 32}');
    """)
    raw.commit()
    raw.close()
    db = open_data_dir(folder)
    assert programkeys.key_of(db, "p-old") == "ab" * 32
    assert "signing_key" not in {c.name for c in db["programs"].columns}
    old_badge = make_code("p-old", bytes.fromhex("ab" * 32))
    assert verify_code(old_badge, programkeys.program_keys(db)) == "p-old"
    db.close()


def test_a_change_made_before_keys_left_the_log_gives_its_key_and_no_column(tmp_path):
    """A program's first change from an older kiosk carries `signing_key`: it is taken as the key
    (it was never secret), never materialized, and a later offer of another key is refused."""
    from kiosk.clock import format_hlc, new_id
    from kiosk.trust import keys
    from sync import replica

    origin, private = keys.new_origin()
    signer, pid, key = keys.Signer(private), new_id(), "cd" * 32
    change = {"program_id": pid, "origin": origin, "seq": 1, "entity": "programs", "id": pid, "op": "upsert",
              "payload": {"title": "โครงการเดิม", "signing_key": key},
              "hlc": format_hlc(1_780_000_000_000, 0, origin)}
    change["sig"] = signer.sign(keys.next_chain(None, change))
    fresh = Kiosk(tmp_path / "fresh")
    replica.apply_batch(fresh.db, pid, [change], {origin: signer.public_key})
    assert programkeys.key_of(fresh.db, pid) == key
    assert fresh.db.execute("select title from programs").fetchall() == [("โครงการเดิม",)]
    with transaction(fresh.db):
        assert programkeys.offered(fresh.db, {pid: "ef" * 32}, via="test") == 0
    assert programkeys.key_of(fresh.db, pid) == key
    fresh.close()


def test_a_coordinator_prints_the_program_key_and_nobody_else_sees_it(client, coordinator, db, event):
    key = programkeys.key_of(db, event["program_id"])
    page = coordinator.get(f"/programs/{event['program_id']}?lang=en").get_data(as_text=True)
    assert "Program key for a kiosk with no network" in page and programkeys.format_key(key)[:14] not in page
    assert coordinator.get(f"/programs/{event['program_id']}/key").status_code == 405  # never a link
    sheet = coordinator.post(f"/programs/{event['program_id']}/key")
    text = sheet.get_data(as_text=True)
    assert sheet.status_code == 200 and sheet.headers["Cache-Control"] == "no-store"
    assert "".join(f"<span>{g}</span>" for g in programkeys.format_key(key).split("-")) in text
    assert "js/print.js" in text and "<script>" not in text


def test_door_staff_cannot_see_a_program_key(staff, db, event):
    refused = staff.post(f"/programs/{event['program_id']}/key")
    assert refused.status_code == 403
    assert programkeys.format_key(programkeys.key_of(db, event["program_id"]))[:14] not in refused.get_data(as_text=True)


def test_a_key_typed_from_paper_forgives_case_spaces_and_digits_misread_for_letters():
    key = programkeys.new_key()
    printed = programkeys.format_key(key)
    assert programkeys.parse_key(printed) == key
    assert programkeys.parse_key(printed.lower().replace("-", " ")) == key
    assert programkeys.parse_key(printed.replace("O", "0").replace("I", "1").replace("B", "8")) == key
    assert programkeys.parse_key(key.upper()) == key  # hex, as `kiosk program key` printed none but a script may
    for wrong in ("", printed[:-4], printed + "-AAAA", printed.replace(printed[0], "9", 1)):
        with pytest.raises(programkeys.ProgramKeyError) as refused:
            programkeys.parse_key(wrong)
        assert refused.value.reason == "bad_program_key"


def test_a_programs_id_carries_its_key_check_so_no_other_key_fits_it(tmp_path):
    import uuid

    from kiosk.store.validator import ChangeError, check_change
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid, key = program["program_id"], _key(door, program)
    assert uuid.UUID(pid).version == 7 and programkeys.id_commits(pid, programkeys.key_check(key))
    assert not programkeys.id_commits(pid, programkeys.key_check(programkeys.new_key()))
    [first] = [c for c in changes.changes_since(door.db, pid, {}, limit=-1) if c["entity"] == "programs"]
    forged = {**first, "payload": {**first["payload"], "key_check": programkeys.key_check(programkeys.new_key())}}
    with pytest.raises(ChangeError) as refused:
        check_change(forged, pid)
    assert refused.value.reason == "bad_field"
    door.close()
