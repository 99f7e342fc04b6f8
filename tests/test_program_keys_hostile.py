"""Program keys against a hostile enrolled device, paired peer or bundle
writer that tries to plant a key of its own on central or a kiosk, or to re-point a program's
`key_check`; malformed offers must be refused calmly."""

import copy

import pytest

from kiosk.clock import new_id
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.trust import programkeys
from sync import bundle, replica
from sync.central.storage import Storage
from sync.protocol import SyncError

from support import Kiosk, SignedDevice, enrol

NOW_MS = 1_780_000_000_000


class Device(SignedDevice):
    """Another device's signed changes (a hostile one, or a kiosk from before key checks), to a
    program's row unless a test says otherwise."""

    def __init__(self):
        super().__init__(NOW_MS)

    def change(self, program_id, payload, hlc_ms=NOW_MS, entity="programs", entity_id=None, op="upsert"):
        return super().change(program_id, entity, entity_id or program_id, payload, hlc_ms=hlc_ms, op=op)


def _log(kiosk: Kiosk, pid: str) -> list[dict]:
    return changes.changes_since(kiosk.db, pid, {}, limit=-1)


@pytest.fixture
def storage(tmp_path):
    found = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    yield found
    found.close()


def test_a_legacy_signing_key_pushed_later_never_shadows_a_new_programs_key_on_central(tmp_path, storage):
    """Central holds the row of a new program, not yet its key; a device of the program pushes
    `signing_key` (the legacy field). Central must not take it as the program's key, and the
    genuine key, offered next, must be kept."""
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid, genuine = program["program_id"], programkeys.key_of(door.db, program["program_id"])
    storage.push(pid, _log(door, pid), source="test", keys=door.keys())
    hostile, planted = Device(), programkeys.new_key()
    storage.push(pid, [hostile.change(pid, {"signing_key": planted}, hlc_ms=NOW_MS + 10 ** 9)],
                 source="device", keys=hostile.keys)
    assert storage.program_key(pid) != planted  # certificates and badge sheets are signed with it
    assert storage.store_program_key(pid, genuine, added_by="door") is True
    assert storage.program_key(pid) == genuine
    assert storage.program_keys_for([pid]) == {pid: genuine}
    door.close()


def _legacy_program(tmp_path, storage):
    """A program made by a kiosk before key checks: its first change carries `signing_key`."""
    old, pid, key = Device(), new_id(), "cd" * 32
    first = old.change(pid, {"title": "โครงการเดิม", "signing_key": key}, hlc_ms=NOW_MS - 10 ** 8)
    door = Kiosk(tmp_path / "door")
    replica.apply_batch(door.db, pid, [copy.deepcopy(first)], old.keys)
    storage.push(pid, [first], source="test", keys=old.keys)
    return door, pid, key


def test_no_device_can_give_a_program_made_before_key_checks_a_key_check_on_central(tmp_path, storage):
    """A legacy row has no key_check: one set by a hostile device would make every kiosk drop the
    genuine key (badges fail) and central then take the hostile device's key in a hello."""
    door, pid, key = _legacy_program(tmp_path, storage)
    hostile, planted = Device(), programkeys.new_key()
    forged = hostile.change(pid, {"key_check": programkeys.key_check(planted)}, hlc_ms=NOW_MS)
    with pytest.raises(SyncError) as refused:
        storage.push(pid, [forged], source="device", keys=hostile.keys)
    assert refused.value.reason == "bad_field"
    assert storage.program_key(pid) == key
    assert storage.store_program_key(pid, planted, added_by="hostile") is False
    again = hostile.change(pid, {"signing_key": planted}, hlc_ms=NOW_MS + 1)  # the legacy key is set once too
    with pytest.raises(SyncError):
        storage.push(pid, [again], source="device", keys=hostile.keys)
    assert storage.program_key(pid) == key
    door.close()


def test_a_paired_peer_cannot_give_a_legacy_program_a_key_check_on_a_kiosk(tmp_path, storage):
    door, pid, key = _legacy_program(tmp_path, storage)
    hostile, planted = Device(), programkeys.new_key()
    forged = hostile.change(pid, {"key_check": programkeys.key_check(planted)}, hlc_ms=NOW_MS)
    try:
        replica.apply_batch(door.db, pid, [forged], hostile.keys)  # what PeerBackend.push does
    except SyncError:
        pass
    programkeys.offered(door.db, {pid: planted}, via="peer hostile")  # the peer's next hello
    assert programkeys.key_of(door.db, pid) == key
    door.close()


def test_an_older_change_carrying_a_legacy_key_plants_nothing_on_a_usb_only_kiosk(tmp_path):
    """A hostile device of the program sends a programs change stamped before the program was
    made, with a `signing_key` of its own. A kiosk that imports the program from a USB stick,
    typing the genuine key, must end up with the genuine key (the forged one would check in
    badges the hostile device signs, and refuse every genuine badge)."""
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid, genuine = program["program_id"], programkeys.key_of(door.db, program["program_id"])
    hostile, planted = Device(), programkeys.new_key()
    early = hostile.change(pid, {"title": "x", "signing_key": planted}, hlc_ms=NOW_MS - 10 ** 9)
    replica.apply_batch(door.db, pid, [early], hostile.keys)  # accepted: the title is a plain edit
    assert programkeys.key_of(door.db, pid) == genuine
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door.db, path)
    fresh = Kiosk(tmp_path / "fresh")
    bundle.import_kiosk(fresh.db, path, trust_new=True, program_key=programkeys.format_key(genuine))
    assert programkeys.key_of(fresh.db, pid) == genuine
    door.close()
    fresh.close()


def test_a_key_planted_by_a_peer_before_the_rows_does_not_block_the_typed_key(tmp_path):
    """A paired peer hands a kiosk a wrong key for a program it does not hold yet (kept until it
    can be checked); the program then comes on a USB stick with its key typed from paper: the
    typed key, which the bundle proves, opens it and replaces the wrong one."""
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid, genuine = program["program_id"], programkeys.key_of(door.db, program["program_id"])
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door.db, path)
    fresh = Kiosk(tmp_path / "fresh")
    with transaction(fresh.db):
        assert programkeys.offered(fresh.db, {pid: programkeys.new_key()}, via="peer hostile") == 1
    bundle.import_kiosk(fresh.db, path, trust_new=True, program_key=programkeys.format_key(genuine))
    assert programkeys.key_of(fresh.db, pid) == genuine
    door.close()
    fresh.close()


MALFORMED = [["a" * 64], 7, None, {"x": 1}, "zz" * 32, "AB" * 32 + "\n", "ab" * 31, "ab" * 33, "\u0661" * 64,
             " " + "ab" * 32]


def test_malformed_program_keys_in_a_hello_are_left_out_by_central_and_a_peer(tmp_path, central):
    """Any shape of `program_keys` or of a key in it: an answer, never a 500, and nothing kept."""
    from test_program_keys import _signed_hello

    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid = program["program_id"]
    central.storage().push(pid, _log(door, pid), source="test", keys=door.keys())
    device = enrol(Kiosk(tmp_path / "device"), central.url, central.storage(), programs=[pid])
    for offer in [[1], "text", 5, *({pid: bad} for bad in MALFORMED)]:
        answer = _signed_hello(central.url, device, {"programs": {pid: {}}, "program_keys": offer})
        assert answer.get("programs") is not None, (offer, answer)
    assert central.storage().program_key(pid) is None
    door.close()


def _resigned(path, edit_manifest):
    """The bundle with its manifest edited and signed again by another device (any enrolled
    device can write a bundle in its own name)."""
    import gzip
    import hashlib

    from sync.protocol import dumps
    lines = gzip.decompress(path.read_bytes()).split(b"\n", 1)
    manifest = __import__("json").loads(lines[0])
    edit_manifest(manifest)
    writer = Device()
    manifest.update(sha256=hashlib.sha256(lines[1]).hexdigest(), origin=writer.origin,
                    public_key=writer.signer.public_key)
    manifest["sig"] = writer.signer.sign_bytes(dumps({k: v for k, v in manifest.items() if k != "sig"}))
    path.write_bytes(gzip.compress(dumps(manifest) + b"\n" + lines[1]))


@pytest.mark.parametrize("check", [5, ["ab" * 16], {"x": 1}, "ก" * 32, True])
def test_a_bundle_whose_manifest_key_check_is_not_text_is_refused_not_a_traceback(tmp_path, check):
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid, key = program["program_id"], programkeys.key_of(door.db, program["program_id"])
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door.db, path)
    _resigned(path, lambda m: m["programs"][pid].update(key_check=check))
    fresh = Kiosk(tmp_path / "fresh")
    for typed in (None, key):
        with pytest.raises(SyncError) as refused:
            bundle.import_kiosk(fresh.db, path, trust_new=True, program_key=typed)
        assert refused.value.reason in ("bad_program_key", "program_key_missing", "bundle_tampered")
    with pytest.raises(SyncError):  # the kiosk that holds the key refuses it the same way
        bundle.import_kiosk(door.db, path)
    assert fresh.table("programs") == []
    door.close()
    fresh.close()


def test_the_sync_page_refuses_a_bundle_with_a_garbled_key_check_with_a_message(tmp_path, coordinator, db, event):
    import io

    path = tmp_path / "stick.jsonl.gz"
    path.write_bytes(coordinator.get("/sync/bundle").data)
    _resigned(path, lambda m: m["programs"][event["program_id"]].update(key_check=5))
    coordinator.get("/sync/?lang=en")
    before = db.execute("select count(*) from changes").fetchone()[0]
    page = coordinator.post("/sync/bundle", data={"file": (io.BytesIO(path.read_bytes()), "b.jsonl.gz")},
                            content_type="multipart/form-data", follow_redirects=True)
    assert page.status_code == 200 and "refused, nothing changed" in page.get_data(as_text=True)
    assert db.execute("select count(*) from changes").fetchone()[0] == before


def test_a_relay_that_delivers_a_new_program_first_cannot_choose_its_key(tmp_path, storage):
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    pid, genuine = program["program_id"], programkeys.key_of(door.db, program["program_id"])
    relay, planted = Device(), programkeys.new_key()  # it learnt the program's id from the door kiosk
    hijack = relay.change(pid, {"title": "x", "key_check": programkeys.key_check(planted)}, hlc_ms=NOW_MS - 10 ** 9)
    try:
        storage.push(pid, [hijack], source="relay", keys=relay.keys)
    except SyncError:
        pass
    storage.store_program_key(pid, planted, added_by="relay") if storage.programs() else None
    storage.push(pid, _log(door, pid), source="door", keys=door.keys())
    assert storage.store_program_key(pid, genuine, added_by="door") is True
    door.close()


def test_a_typo_in_the_last_letter_of_a_typed_key_is_refused_not_read_as_the_key():
    """The 52nd letter carries one bit of the key and four unused ones: a mistyped last letter
    (R for Q, B for A) must be refused, not quietly decode to the same key."""
    key = "00" * 31 + "01"  # every key ends in A or Q; this one in Q
    printed = programkeys.format_key(key)
    assert printed.endswith("Q") and programkeys.parse_key(printed) == key
    for last in "RSZ7":
        with pytest.raises(programkeys.ProgramKeyError):
            programkeys.parse_key(printed[:-1] + last)
