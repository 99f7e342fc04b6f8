"""Issue 10: signatures are checked per run and kept only once checked, the same on the central
server, kiosks, peers and bundles; every sender cuts its batches where each origin's run ends at a
change whose signature it holds.

The defect this closes: an enrolled device pushed its own run with garbage signatures in the
middle and a valid one at the end; central checked only the last and stored the garbage, and every
kiosk of the program that pulled was refused ("bad_signature") for ever."""

import time

import pytest

from kiosk.clock import format_hlc
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.trust import keys, programkeys
from sync import replica
from sync.bundle import export_central, import_kiosk
from sync.central.storage import Storage
from sync.client import enrol as pair
from sync.client import sync_once
from sync.protocol import SyncError
from sync.state import SyncState

from support import Kiosk, PeerServer, enrol

GARBAGE = "00" * 64


def _stored_sigs(db_or_storage, program_id: str, origin: str) -> dict[int, str | None]:
    if isinstance(db_or_storage, Storage):
        found, _ = db_or_storage.pull(program_id, {}, limit=10 ** 6)
        return {c["seq"]: c["sig"] for c in found if c["origin"] == origin}
    return dict(db_or_storage.execute("select seq, sig from changes where program_id = ? and origin = ?",
                                      [program_id, origin]).fetchall())


def _spoil_unchecked(kiosk: Kiosk, program_id: str, from_seq: int) -> None:
    """Garbage in place of the signatures of the kiosk's own changes from `from_seq` on (one run,
    pushed in one batch) that a receiver does not check: all but the run's end and checkpoints."""
    me = kiosk.device_id
    run = [c for c in changes.changes_since(kiosk.db, program_id, {}, limit=-1)
           if c["origin"] == me and c["seq"] >= from_seq]
    spoilt = [c["seq"] for c, check in zip(run, keys.vouching(run)) if not check]
    assert spoilt
    with transaction(kiosk.db):
        for seq in spoilt:
            kiosk.db.execute("update changes set sig = ? where program_id = ? and origin = ? and seq = ?",
                             [GARBAGE, program_id, me, seq])


@pytest.fixture
def poisoned(tmp_path, central_server, central_db_url):
    """A real central server (SQLite, PostgreSQL) holding program P from head office, and Mallory:
    an enrolled device that registered 20 people and pushed them with garbage signatures on all
    but the last."""
    server = central_server(url=central_db_url)
    storage = server.storage()
    office = Kiosk(tmp_path / "office")
    program = office.create_program()
    office.register(program, 3)
    enrol(office, server.url, storage)
    sync_once(office.data_dir)
    mallory = Kiosk(tmp_path / "mallory")
    enrol(mallory, server.url, storage, [program["program_id"]])
    sync_once(mallory.data_dir)
    mallory.register(program, 20, prefix="มาลี")
    _spoil_unchecked(mallory, program["program_id"], from_seq=1)
    sync_once(mallory.data_dir)  # central checks the run's end: it is Mallory's, so it is taken
    yield server, storage, office, program, mallory
    for kiosk in (office, mallory):
        kiosk.close()
    storage.close()


def test_garbage_signatures_inside_a_devices_run_never_reach_or_stop_the_kiosks(tmp_path, poisoned):
    server, storage, office, program, mallory = poisoned
    pid = program["program_id"]
    assert storage.vector(pid)[mallory.device_id] == 20
    door = Kiosk(tmp_path / "door")
    enrol(door, server.url, storage, [pid])
    sync_once(door.data_dir)  # before: SyncError("bad_signature") on every pull, for ever
    assert GARBAGE not in _stored_sigs(storage, pid, mallory.device_id).values()
    names = {r[0] for r in door.db.execute("select first_name from participants")}
    assert {f"มาลี{i}" for i in range(20)} <= names
    kept = _stored_sigs(door.db, pid, mallory.device_id)
    assert GARBAGE not in kept.values() and kept[20]  # the run's end, checked here too
    sync_once(office.data_dir)
    assert door.domain() == office.domain()
    door.close()


def test_a_bundle_and_a_peer_relay_of_the_poisoned_program_import_and_sync(tmp_path, poisoned):
    server, storage, office, program, mallory = poisoned
    pid = program["program_id"]
    bundle = tmp_path / "central.jsonl.gz"
    export_central(storage, bundle, [pid])
    usb = Kiosk(tmp_path / "usb-only")
    typed = programkeys.format_key(programkeys.key_of(office.db, pid))  # from paper, as a USB-only kiosk has it
    counts = import_kiosk(usb.db, bundle, trust_new=True, program_key=typed)  # before: refused, "bad_signature"
    assert counts["applied"] == counts["changes"] > 20
    assert GARBAGE not in _stored_sigs(usb.db, pid, mallory.device_id).values()
    # the USB kiosk serves its peers; a second laptop syncs from it, and Mallory pushes to it directly
    with PeerServer(usb.data_dir) as peer:
        laptop = Kiosk(tmp_path / "laptop")
        pair(laptop.data_dir, peer.url, SyncState(usb.data_dir).create_pair_code(), kind="peer")
        sync_once(laptop.data_dir, url=peer.url)
        mallory.register(program, 3, prefix="มาลา")
        pid, origin = program["program_id"], mallory.device_id
        _spoil_unchecked(mallory, pid, from_seq=21)
        pair(mallory.data_dir, peer.url, SyncState(usb.data_dir).create_pair_code(), kind="peer")
        sync_once(mallory.data_dir, url=peer.url)
        sync_once(laptop.data_dir, url=peer.url)
    usb.reopen()
    assert laptop.domain() == usb.domain()
    assert {f"มาลา{i}" for i in range(3)} <= {r[0] for r in laptop.db.execute("select first_name from participants")}
    for kiosk in (usb, laptop):
        assert GARBAGE not in _stored_sigs(kiosk.db, pid, origin).values()
    laptop.close()
    usb.close()


def test_a_long_run_pushed_whole_is_pulled_in_cut_batches_that_verify(tmp_path, central_server):
    server = central_server()
    storage = server.storage()
    office = Kiosk(tmp_path / "office")
    program = office.create_program()
    office.register(program, 1200)
    pid, origin = program["program_id"], office.device_id
    run = changes.changes_since(office.db, pid, {}, limit=-1)
    storage.push(pid, run, source="test", keys=office.keys())  # one run of 1,200 odd changes
    signed = sorted(s for s, sig in _stored_sigs(storage, pid, origin).items() if sig)
    assert signed == [c["seq"] for c, check in zip(run, keys.vouching(run)) if check]  # end, checkpoints
    assert len(signed) < len(run) // 4
    door = Kiosk(tmp_path / "door")
    enrol(door, server.url, storage, [pid])
    summary = sync_once(door.data_dir)  # pulls of 500 cut where a signature is held
    assert summary["pulled"] == len(run)
    assert door.domain() == office.domain()
    door.close()
    office.close()
    storage.close()


class Origin:
    """A device's signed change stream with stamps chosen by the test."""

    def __init__(self):
        self.origin, private = keys.new_origin()
        self.signer, self.seq, self.chain = keys.Signer(private), 0, None

    def person(self, program: dict, physical_ms: int) -> dict:
        self.seq += 1
        change = {"program_id": program["program_id"], "origin": self.origin, "seq": self.seq,
                  "entity": "participants", "id": f"{self.origin[:8]}-{self.seq:05d}", "op": "upsert",
                  "payload": {"first_name": f"คน{self.seq}", "last_name": "ใจดี", "cohort_id": program["cohort_id"]},
                  "hlc": format_hlc(physical_ms, 0, self.origin)}
        self.chain = keys.next_chain(self.chain, change)
        change["sig"] = self.signer.sign(self.chain)
        return change


@pytest.mark.parametrize("limit", [120, 60])
def test_two_interleaved_runs_are_cut_at_common_checkpoints_and_verify(tmp_path, limit):
    office = Kiosk(tmp_path / "office")
    program = office.create_program()
    pid = program["program_id"]
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    storage.push(pid, changes.changes_since(office.db, pid, {}, limit=-1), source="test", keys=office.keys())
    x, y = Origin(), Origin()
    start = (int(time.time() * 1000) - 3_600_000) // keys.CHECKPOINT_MS * keys.CHECKPOINT_MS
    step = keys.CHECKPOINT_MS // 50  # 50 changes of each origin in every checkpoint interval
    for device, offset in ((x, 0), (y, step // 2)):
        run = [device.person(program, start + i * step + offset) for i in range(300)]
        storage.push(pid, run, source="test", keys={device.origin: device.signer.public_key})  # one run each
    door = Kiosk(tmp_path / "door")
    theirs, sizes = changes.vector(office.db, pid), []
    replica.apply_batch(door.db, pid, changes.changes_since(office.db, pid, {}, limit=-1), office.keys())
    while True:
        batch, more = storage.pull(pid, theirs, limit=limit)
        if not batch:
            break
        sizes.append(len(batch))
        replica.apply_batch(door.db, pid, batch, storage.keys_for(c["origin"] for c in batch))
        theirs = changes.vector(door.db, pid)
        if not more:
            break
    assert sizes == [100] * 6  # each batch ends at an interval's end: shorter than 120, past 60
    assert changes.vector(door.db, pid)[x.origin] == changes.vector(door.db, pid)[y.origin] == 300
    kept = _stored_sigs(door.db, pid, x.origin)
    assert sorted(s for s, sig in kept.items() if sig) == list(range(50, 301, 50))  # the checkpoints
    door.close()
    office.close()
    storage.close()


def test_a_change_log_from_before_keeps_only_the_signatures_that_check(tmp_path, central_db_url):
    from sqlalchemy import delete, update

    from sync.central.storage.tables import changes as stored
    from sync.central.storage.tables import meta
    office = Kiosk(tmp_path / "office")
    program = office.create_program()
    office.register(program, 30)
    pid, origin = program["program_id"], office.device_id
    url = central_db_url
    storage = Storage(url)
    storage.push(pid, changes.changes_since(office.db, pid, {}, limit=-1), source="test", keys=office.keys())
    top = storage.vector(pid)[origin]
    with storage.write() as conn:  # as the old code left it: every signature sent, one of them garbage
        for seq, sig in _stored_sigs(office.db, pid, origin).items():
            conn.execute(update(stored).where(stored.c.program_id == pid, stored.c.origin == origin,
                                              stored.c.seq == seq).values(sig=GARBAGE if seq == 5 else sig))
        conn.execute(delete(meta).where(meta.c.key == "signatures"))
        _as_before_alembic(conn)
    storage.close()
    storage = Storage(url)  # the upgrade
    kept = _stored_sigs(storage, pid, origin)
    assert GARBAGE not in kept.values() and kept[top]
    assert sum(1 for sig in kept.values() if sig) < len(kept) // 2
    door = Kiosk(tmp_path / "door")
    found, more = storage.pull(pid, {}, limit=500)
    assert not more
    replica.apply_batch(door.db, pid, found, storage.keys_for({c["origin"] for c in found}))
    assert door.domain() == office.domain()
    for kiosk in (door, office):
        kiosk.close()
    storage.close()


def _as_before_alembic(conn) -> None:
    """Takes a central database back to the shape it had before Alembic (and its typed tables):
    what the upgrade of such a database starts from."""
    from sync.central.storage.tables import READ_TABLES

    for name in [*READ_TABLES, "area_counts", "login_failures", "alembic_version", "revoked_origins", "undos", "erasures"]:
        conn.exec_driver_sql(f"DROP TABLE {name}")
    for index in ("attendance_session", "scans_person", "changes_people"):
        conn.exec_driver_sql(f"DROP INDEX {index}")
    for table, column in (("devices", "room"), ("devices", "room_area"), ("scans", "operator"), ("scans", "note")):
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")


def test_a_device_whose_stamps_run_backwards_is_refused_on_central_and_kiosks(tmp_path):
    """Batches are pulled and cut in HLC order: an origin whose later change is stamped earlier
    would reach the kiosks out of seq order ("seq_gap" for ever); it is refused when pushed."""
    office = Kiosk(tmp_path / "office")
    program = office.create_program()
    pid = program["program_id"]
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    storage.push(pid, changes.changes_since(office.db, pid, {}, limit=-1), source="test", keys=office.keys())
    device, now = Origin(), int(time.time() * 1000) - 60_000
    first, second = device.person(program, now), device.person(program, now - 5)
    offered = {device.origin: device.signer.public_key}
    storage.push(pid, [first], source="device", keys=offered)
    replica.apply_batch(office.db, pid, [first], offered)
    for apply in (lambda: storage.push(pid, [second], source="device", keys=offered),
                  lambda: replica.apply_batch(office.db, pid, [second], offered)):
        with pytest.raises(SyncError) as refused:
            apply()
        assert refused.value.reason == "bad_clock"
    office.close()
    storage.close()
