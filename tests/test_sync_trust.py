"""Issue 10: what an authenticated device may write. Every change is checked by one validator on
the central server and on every kiosk; a bad change refuses its batch and leaves everything as it was."""

import copy
import json
import time

import pytest

from kiosk.clock import format_hlc, parse_hlc
from kiosk.store import changes
from kiosk.store.db import transaction
from kiosk.trust import keys, programkeys
from sync import replica
from sync.central.storage import Storage
from sync.protocol import PROTOCOL, SyncError

from support import Kiosk, SignedDevice

NOW_MS = 1_780_000_000_000


@pytest.fixture
def world(tmp_path):
    """A kiosk holding programs P (with people) and P2, and the central server holding both."""
    kiosk = Kiosk(tmp_path / "door")
    p, p2 = kiosk.create_program(), kiosk.create_program()
    people = kiosk.register(p, 2)
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    for program in (p, p2):
        pid = program["program_id"]
        storage.push(pid, changes.changes_since(kiosk.db, pid, {}, limit=-1), source="test", keys=kiosk.keys())
    yield kiosk, storage, p, p2, people
    kiosk.close()
    storage.close()


class Stranger(SignedDevice):
    """Another enrolled device's next changes, stamped and signed as a kiosk does it: only what
    each test breaks is wrong about them."""

    def __init__(self):
        super().__init__(NOW_MS)


def _refused_everywhere(world, program_id, batch, reason, offered=None):
    kiosk, storage, *_ = world
    offered = offered or {c["origin"]: None for c in batch}
    before_kiosk, before_central = kiosk.domain(), storage.change_count()
    with pytest.raises(SyncError) as central_refusal:
        storage.push(program_id, copy.deepcopy(batch), pusher=None, source="device", keys=offered)
    with pytest.raises(SyncError) as kiosk_refusal:
        replica.apply_batch(kiosk.db, program_id, copy.deepcopy(batch), offered)
    assert (central_refusal.value.reason, kiosk_refusal.value.reason) == (reason, reason)
    assert kiosk.domain() == before_kiosk and storage.change_count() == before_central


def test_no_device_can_change_the_key_check_of_a_program(world):
    """The row's `key_check` says which key is the program's: set by its first insert, never after
    (else a device could first re-point it and then hand out a key of its own)."""
    kiosk, storage, p, *_ = world
    stranger = Stranger()
    forged = stranger.change(p["program_id"], "programs", p["program_id"], {"key_check": "0" * 32})
    _refused_everywhere(world, p["program_id"], [forged], "bad_field", stranger.keys)
    eraser = Stranger()  # cleared, a key of anybody's would match nothing and be taken unchecked
    cleared = eraser.change(p["program_id"], "programs", p["program_id"], {"key_check": None})
    _refused_everywhere(world, p["program_id"], [cleared], "bad_field", eraser.keys)
    editor = Stranger()  # the same row's other fields stay editable by the program's devices
    renamed = editor.change(p["program_id"], "programs", p["program_id"], {"title": "ชื่อใหม่"},
                             hlc=format_hlc(int(time.time() * 1000) + 1000, 0, editor.origin))
    storage.push(p["program_id"], [copy.deepcopy(renamed)], source="device", keys=editor.keys)
    replica.apply_batch(kiosk.db, p["program_id"], [renamed], editor.keys)
    assert kiosk.db.execute("select title from programs where id = ?", [p["program_id"]]).fetchone()[0] == "ชื่อใหม่"
    assert kiosk.db.execute("select key_check from programs where id = ?", [p["program_id"]]).fetchone()[0]


def test_a_change_of_program_p2_cannot_rename_a_person_of_program_p(world):
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    forged = stranger.change(p2["program_id"], "participants", people[0],
                             {"first_name": "ปลอม", "phone": "0899999999"})
    _refused_everywhere(world, p2["program_id"], [forged], "wrong_program", stranger.keys)


def test_a_programs_change_may_only_be_about_its_own_program(world):
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    forged = stranger.change(p2["program_id"], "programs", p["program_id"], {"title": "ยึดโครงการ"})
    _refused_everywhere(world, p2["program_id"], [forged], "wrong_program", stranger.keys)


def test_a_new_row_may_not_name_a_cohort_of_another_program(world):
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    forged = stranger.change(p2["program_id"], "participants", "0" * 8 + "-newbie",
                             {"first_name": "ก", "last_name": "ข", "cohort_id": p["cohort_id"]})
    _refused_everywhere(world, p2["program_id"], [forged], "wrong_program", stranger.keys)


@pytest.mark.parametrize("payload, override, reason", [
    ({"first_name": "ก", "last_name": "ข"}, {"hlc": "not-a-clock"}, "bad_clock"),
    ({"first_name": "ก", "last_name": "ข"}, {"hlc": "9999999999999-99999-"}, "clock_ahead"),
    ({"first_name": "ก", "last_name": "ข"}, {"hlc": format_hlc(NOW_MS, 0, "someone-else")}, "bad_clock"),
    ({"first_name": "ก"}, {}, "missing_field"),
    ({"first_name": "ก", "last_name": "ข", "cohort_id": "/../../x"}, {}, "bad_field"),
    ({"first_name": "ก" * 5000, "last_name": "ข"}, {}, "bad_field"),
    ({"first_name": "ก", "last_name": "ข", "role": 7}, {}, "bad_field"),
], ids=["not-a-clock", "far-future", "another-origin", "partial-first-insert", "path-as-id", "huge-name",
        "number-as-role"])
def test_a_bad_person_change_refuses_its_batch_on_central_and_kiosk(world, payload, override, reason):
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    good = stranger.change(p["program_id"], "participants", "1" * 8 + "-fine",
                           {"first_name": "ดี", "last_name": "งาม", "cohort_id": p["cohort_id"]})
    if override.get("hlc", "").endswith("-"):
        override = {"hlc": override["hlc"] + stranger.origin}
    bad = stranger.change(p["program_id"], "participants", "2" * 8 + "-bad", payload, **override)
    _refused_everywhere(world, p["program_id"], [good, bad], reason, stranger.keys)


def test_a_cohort_number_must_be_a_number(world):
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    forged = stranger.change(p["program_id"], "cohorts", p["cohort_id"], {"number": "/../../x"})
    _refused_everywhere(world, p["program_id"], [forged], "bad_field", stranger.keys)


def test_a_far_future_stamp_never_moves_the_kiosks_clock(world):
    kiosk, storage, p, *_ = world
    stranger = Stranger()
    forged = stranger.change(p["program_id"], "participants", "3" * 8 + "-x",
                             {"first_name": "ก", "last_name": "ข"}, hlc="9999999999999-00000-" + stranger.origin)
    with pytest.raises(SyncError):
        replica.apply_batch(kiosk.db, p["program_id"], [forged], stranger.keys)
    with transaction(kiosk.db):
        stamp = changes.clock(kiosk.db).tick()
    assert parse_hlc(stamp)[0] < 9_000_000_000_000


def test_a_later_coordinator_edit_wins_over_a_change_made_before_it(world):
    """The counterpart of the far-future refusal: an honest stamp loses to a later local edit."""
    kiosk, storage, p, p2, people = world
    stranger = Stranger()
    earlier = stranger.change(p["program_id"], "participants", people[0], {"phone": "0811111111"})
    replica.apply_batch(kiosk.db, p["program_id"], [earlier], stranger.keys)
    kiosk.edit(p, people[0], phone="0822222222")
    assert kiosk.db.execute("select phone from participants where id = ?", [people[0]]).fetchone()[0] == "0822222222"


# --- each origin is written only by its device (finding 5) ---------------------------------------

def test_a_device_cannot_append_changes_to_another_devices_origin(world):
    kiosk, storage, p, *_ = world
    victim = kiosk.device_id
    mallory = Stranger()
    seq = changes.vector_seq(kiosk.db, p["program_id"], victim) + 1
    after = parse_hlc(changes.stored_change(kiosk.db, p["program_id"], victim, seq - 1)["hlc"])[0] + 1
    forged = {"program_id": p["program_id"], "origin": victim, "seq": seq, "entity": "sites", "id": p["site_id"],
              "op": "upsert", "payload": {"name": "ยึด"}, "hlc": format_hlc(after, 0, victim)}
    forged["sig"] = mallory.signer.sign(keys.next_chain(None, forged))
    other = Kiosk(kiosk.data_dir.parent / "other")
    replica.apply_batch(other.db, p["program_id"], changes.changes_since(kiosk.db, p["program_id"], {}, -1),
                        kiosk.keys())
    for offered in ({victim: mallory.signer.public_key}, mallory.keys):
        with pytest.raises(SyncError) as central_refusal:
            storage.push(p["program_id"], [forged], source="device", keys=offered)
        with pytest.raises(SyncError) as kiosk_refusal:
            replica.apply_batch(other.db, p["program_id"], [forged], offered)
        assert central_refusal.value.reason == kiosk_refusal.value.reason == "bad_signature"
    other.close()


def test_a_relay_cannot_alter_a_change_it_forwards(world, tmp_path):
    kiosk, storage, p, *_ = world
    kiosk.edit(p, kiosk.register(p, 1)[0], phone="0811111111")
    fresh = changes.changes_since(kiosk.db, p["program_id"], storage.vector(p["program_id"]), -1)
    altered = copy.deepcopy(fresh)
    altered[-1]["payload"]["phone"] = "0899999999"
    with pytest.raises(SyncError) as refused:
        storage.push(p["program_id"], altered, source="relay", keys=kiosk.keys())
    assert refused.value.reason == "bad_signature"
    storage.push(p["program_id"], fresh, source="relay", keys=kiosk.keys())  # the genuine ones pass


def test_a_peer_claiming_more_of_our_stream_does_not_make_us_rotate(world):
    from sync.peer import PeerBackend
    kiosk, storage, p, *_ = world
    me = kiosk.device_id
    PeerBackend(kiosk.data_dir).hello("peer", 0.0, {"protocol": PROTOCOL, "programs": {p["program_id"]: {me: 10 ** 6}}})
    kiosk.reopen()
    assert kiosk.device_id == me


def test_a_kiosk_restored_from_backup_rotates_when_shown_its_own_signed_changes(world, tmp_path):
    import shutil

    from sync.peer import PeerBackend
    kiosk, storage, p, *_ = world
    backup = tmp_path / "backup"
    kiosk.db.execute("pragma wal_checkpoint(full)")
    shutil.copytree(kiosk.data_dir, backup)
    newer = kiosk.register(p, 1, prefix="หลังสำรอง")
    restored = Kiosk(backup)
    me, pid = restored.device_id, p["program_id"]
    lost = [c for c in changes.changes_since(kiosk.db, pid, changes.vector(restored.db, pid), -1)]
    restored.close()
    PeerBackend(backup).push("peer", 0.0, {"protocol": PROTOCOL, "program_id": pid, "changes": lost, "keys": kiosk.keys()})
    restored = Kiosk(backup)
    assert restored.device_id != me  # its lost changes are back, and it writes under a fresh origin
    assert restored.db.execute("select 1 from participants where id = ?", [newer[0]]).fetchone()
    restored.close()


# --- enrolment: the server names devices (finding 6) -----------------------------------------------

def test_enrolment_ignores_a_client_chosen_device_id_and_cannot_take_over_a_device(world):
    kiosk, storage, *_ = world
    victim = storage.enrol(storage.create_enrol_code())
    from sync.central.api import CentralBackend
    backend = CentralBackend(storage)
    taken = backend.enrol({"protocol": PROTOCOL, "code": storage.create_enrol_code(programs=["x" * 8]),
                           "device_id": victim["device_id"]})
    assert taken["device_id"] != victim["device_id"]
    assert storage.lookup(victim["device_id"]) == (victim["secret"], False)


def test_re_enrolment_needs_a_code_made_for_that_device_and_revocation_is_sticky(world):
    kiosk, storage, *_ = world
    device = storage.enrol(storage.create_enrol_code())["device_id"]
    again = storage.enrol(storage.create_enrol_code(device_id=device))
    assert again["device_id"] == device and storage.lookup(device)[0] == again["secret"]
    pending = storage.create_enrol_code(device_id=device)
    assert storage.revoke(device)
    with pytest.raises(SyncError) as refused:
        storage.create_enrol_code(device_id=device)
    assert refused.value.reason == "revoked_device"
    with pytest.raises(SyncError) as refused:
        storage.enrol(pending)
    assert refused.value.reason == "revoked_device"
    assert storage.lookup(device)[1] is True


# --- bundles (finding 4) ---------------------------------------------------------------------------

def _rewrite_bundle(path, edit, program_key):
    """The bundle opened with the program's key (its holder is a kiosk of the program), edited,
    sealed again and signed by the holder."""
    import gzip
    import hashlib

    from sync import bundle
    from sync.protocol import dumps
    lines = gzip.decompress(path.read_bytes()).splitlines()
    manifest, batches = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    for b in batches:
        b["changes"] = bundle.unseal(program_key, b["program_id"], b.pop("sealed"))[0]
    edit(batches)
    for b in batches:
        b["sealed"] = bundle.seal(program_key, b["program_id"], b.pop("changes"))
    content = b"".join(dumps(b) + b"\n" for b in batches)
    forger = Stranger()
    manifest.update(sha256=hashlib.sha256(content).hexdigest(), origin=forger.origin,
                    public_key=forger.signer.public_key)
    manifest["sig"] = forger.signer.sign_bytes(dumps({k: v for k, v in manifest.items() if k != "sig"}))
    path.write_bytes(gzip.compress(dumps(manifest) + b"\n" + content))


def test_a_bundle_altered_and_re_signed_by_its_holder_is_refused(world, tmp_path):
    from sync import bundle
    kiosk, storage, p, *_ = world
    path = tmp_path / "door.jsonl.gz"
    bundle.export_kiosk(kiosk.db, path, [p["program_id"]])

    def rename(batches):
        for change in batches[0]["changes"]:
            if change["entity"] == "participants":
                change["payload"]["first_name"] = "ปลอม"
    key = programkeys.key_of(kiosk.db, p["program_id"])
    _rewrite_bundle(path, rename, key)
    fresh = Kiosk(tmp_path / "fresh")
    with pytest.raises(SyncError) as refused:
        bundle.import_kiosk(fresh.db, path, trust_new=True, program_key=key)
    assert refused.value.reason == "bad_signature"
    assert fresh.table("participants") == []
    fresh.close()


def test_a_bundle_carries_no_program_key_or_secret(world, tmp_path):
    import gzip

    from sync import bundle
    kiosk, storage, p, *_ = world
    path = tmp_path / "door.jsonl.gz"
    bundle.export_kiosk(kiosk.db, path)
    text = gzip.decompress(path.read_bytes()).decode()
    held = [r[0] for r in kiosk.db.execute("select value from meta where key like 'origin_key:%'")]
    assert held and not any(private in text for private in held)


# --- national IDs (finding 3) ---------------------------------------------------------------------

def _valid_id(first12: str) -> str:
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return first12 + str((11 - total % 11) % 10)


def test_national_ids_cannot_be_matched_from_a_bundle_and_a_copied_data_folder(tmp_path):
    """The attacker holds a USB bundle and a copy of the data folder, and a list of candidate IDs
    (here: every ID with the shown last four digits in a block, the real one included); nothing
    they hold lets them tell which candidate is the person's."""
    import gzip
    import hashlib
    import hmac
    import shutil

    from kiosk.people.participants import register_participant
    from kiosk.program import events
    from sync import bundle
    door = Kiosk(tmp_path / "door")
    program = door.create_program()
    real = _valid_id("110370012345")
    person = register_participant(door.db, events.cohort_by_id(door.db, program["cohort_id"]),
                                  {"first_name": "สมชาย", "last_name": "ใจดี", "national_id": real}, issue_badge=False)
    path = tmp_path / "stick.jsonl.gz"
    bundle.export_kiosk(door.db, path)
    door.db.execute("pragma wal_checkpoint(full)")
    copied = tmp_path / "copied"
    shutil.copytree(door.data_dir, copied)
    held = gzip.decompress(path.read_bytes()) + b"".join(f.read_bytes() for f in copied.rglob("*") if f.is_file())
    assert real.encode() not in held and person["nid_hash"].encode() in held  # the hash is there, the ID is not
    candidates = [_valid_id(f"11037001{n:04d}") for n in range(2000)]
    candidates = [c for c in candidates if c[-4:] == real[-4:]] + [real]
    # every 32-byte or hex-64 secret the attacker can find in what they hold, tried as the key
    import re
    found_keys = {bytes.fromhex(h.decode()) for h in re.findall(rb"[0-9a-f]{64}", held)}
    for key in found_keys:
        for candidate in candidates:
            assert hmac.new(key, candidate.encode(), hashlib.sha256).hexdigest() != person["nid_hash"]
    assert hashlib.sha256(real.encode()).hexdigest() != person["nid_hash"]
    door.close()


def test_the_same_id_on_this_kiosk_hashes_the_same(tmp_path):
    """What the key costs: a repeated ID is found on the kiosk that took both (not across kiosks)."""
    from kiosk.thai import national_id_fields
    nid = _valid_id("310370012345")
    assert national_id_fields(nid) == national_id_fields(nid[:1] + "-" + nid[1:])


# --- bounded inflation, no traceback (finding 7) ------------------------------------------------------

@pytest.mark.parametrize("shape", ["one-endless-line", "many-lines"])
def test_a_bundle_that_inflates_without_end_is_refused_in_bounded_memory(tmp_path, shape):
    import gzip
    import tracemalloc

    from sync import bundle
    from sync.protocol import PROTOCOL, dumps
    path, writer = tmp_path / "bomb.jsonl.gz", Stranger()
    manifest = {"kind": bundle.KIND, "protocol": PROTOCOL, "origin": writer.origin, "programs": {},
                "public_key": writer.signer.public_key, "lines": 1, "sha256": "0" * 64}
    manifest["sig"] = writer.signer.sign_bytes(dumps(manifest))  # a genuine writer's signature
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(dumps(manifest) + b"\n")
        chunk = b"0" * (1 << 20) if shape == "one-endless-line" else (b"0" * 1023 + b"\n") * 1024
        for _ in range(300):  # 300 MB inflated, a few hundred kB on the stick
            out.write(chunk)
    assert path.stat().st_size < 2 * 1024 * 1024
    fresh = Kiosk(tmp_path / "fresh")
    tracemalloc.start()
    with pytest.raises(SyncError) as refused:
        bundle.import_kiosk(fresh.db, path, trust_new=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert refused.value.reason == ("payload_too_large" if shape == "one-endless-line" else "bundle_tampered")
    assert peak < 32 * 1024 * 1024
    fresh.close()


def test_deeply_nested_json_is_a_bad_request_not_a_traceback():
    from sync.protocol import decode_body
    with pytest.raises(SyncError) as refused:
        decode_body(b"[" * 200_000 + b"]" * 200_000, None)
    assert refused.value.reason == "bad_json"


def test_the_unauthenticated_enrol_endpoint_inflates_only_a_little(tmp_path):
    import gzip

    from sync.central import create_app
    app = create_app({"CENTRAL_DATA": str(tmp_path / "central"), "TESTING": True})
    big = gzip.compress(b'{"protocol": PROTOCOL, "code": "' + b"A" * (1 << 20) + b'"}')
    response = app.test_client().post("/api/sync/enrol", data=big,
                                      headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert (response.status_code, response.json["reason"]) == (413, "payload_too_large")
    nested = app.test_client().post("/api/sync/enrol", data=b"[" * 5000 + b"]" * 5000,
                                    headers={"Content-Type": "application/json"})
    assert nested.status_code in (400, 413) and nested.json["ok"] is False
