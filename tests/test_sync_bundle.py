"""USB bundles: imported twice is a no-op; truncated, altered, foreign or future ones are refused whole."""

import gzip
import json

import pytest

from kiosk.trust import programkeys
from sync.bundle import export_kiosk, import_central, import_kiosk
from sync.central.storage import Storage
from sync.protocol import SyncError

from support import Kiosk


def printed_key(kiosk, program) -> str:
    """The program's key as `kiosk program key` prints it for paper."""
    return programkeys.format_key(programkeys.key_of(kiosk.db, program["program_id"]))


@pytest.fixture
def venue(tmp_path):
    """A kiosk with a day of scans, and a second kiosk that already holds the same program."""
    door_a = Kiosk(tmp_path / "door-a")
    program = door_a.create_program()
    door_a.scan_many(program, door_a.register(program, 40))
    door_b = Kiosk(tmp_path / "door-b")
    first = tmp_path / "program.jsonl.gz"
    export_kiosk(door_a.db, first)
    import_kiosk(door_b.db, first, trust_new=True, program_key=printed_key(door_a, program))
    door_b.scan_many(program, [r[0] for r in door_b.table("participants")][:10])
    yield door_a, door_b, program
    door_a.close()
    door_b.close()


def test_bundle_imported_twice_changes_nothing_the_second_time(tmp_path, venue):
    door_a, door_b, _ = venue
    path = tmp_path / "door-b.jsonl.gz"
    export_kiosk(door_b.db, path)
    first = import_kiosk(door_a.db, path)
    before = door_a.domain()
    second = import_kiosk(door_a.db, path)
    assert first["applied"] == 20 and second["applied"] == 0
    assert door_a.domain() == before == door_b.domain()


def test_bundle_reaches_the_central_server_once(tmp_path, venue):
    door_a, door_b, program = venue
    path = tmp_path / "door-b.jsonl.gz"
    export_kiosk(door_b.db, path)
    storage = Storage(f"sqlite:///{tmp_path / 'central.db'}")
    assert import_central(storage, path, program_key=printed_key(door_b, program))["applied"] == \
        len(door_b.table("scans")) + 40 + 5
    assert import_central(storage, path)["applied"] == 0
    assert sorted(storage.scan_ids()) == sorted(r[0] for r in door_b.table("scans"))
    assert storage.attendance_count() == 40 * 2


def _rewrite(path, edit):
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(edit(lines))))


def _truncate_file(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_last_batch(path):
    _rewrite(path, lambda lines: lines[:-1])


def _flip_sealed(line: bytes) -> bytes:
    batch = json.loads(line)
    sealed = batch["sealed"]
    batch["sealed"] = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    return json.dumps(batch).encode() + b"\n"


def _alter_a_scan(path):
    _rewrite(path, lambda lines: [*lines[:-1], _flip_sealed(lines[-1])])


def _forge_manifest(path):
    """Altered content with a recomputed sha256: only the writer's signature can tell."""
    import hashlib

    def edit(lines):
        body = [*lines[1:-1], _flip_sealed(lines[-1])]
        manifest = json.loads(lines[0])
        manifest["sha256"] = hashlib.sha256(b"".join(body)).hexdigest()
        return [json.dumps(manifest).encode() + b"\n", *body]
    _rewrite(path, edit)


def _future_protocol(path):
    def edit(lines):
        manifest = json.loads(lines[0])
        manifest["protocol"] = 99
        return [json.dumps(manifest).encode() + b"\n", *lines[1:]]
    _rewrite(path, edit)


@pytest.mark.parametrize("damage, reason", [
    (_truncate_file, "bundle_truncated"), (_drop_last_batch, "bundle_truncated"),
    (_alter_a_scan, "bundle_tampered"), (_forge_manifest, "bundle_tampered"),
    (_future_protocol, "protocol_version"),
])
def test_damaged_bundle_is_refused_whole(tmp_path, venue, damage, reason):
    door_a, door_b, _ = venue
    path = tmp_path / "door-b.jsonl.gz"
    export_kiosk(door_b.db, path)
    damage(path)
    before = door_a.domain()
    with pytest.raises(SyncError) as refused:
        import_kiosk(door_a.db, path)
    assert refused.value.reason == reason
    assert door_a.domain() == before


def test_bundle_from_another_program_is_refused(tmp_path, venue):
    door_a, _, _ = venue
    elsewhere = Kiosk(tmp_path / "elsewhere")
    other = elsewhere.create_program()
    elsewhere.scan_many(other, elsewhere.register(other, 3))
    path = tmp_path / "other.jsonl.gz"
    export_kiosk(elsewhere.db, path)
    before = door_a.domain()
    with pytest.raises(SyncError) as refused:
        import_kiosk(door_a.db, path)
    assert refused.value.reason == "wrong_program"
    assert door_a.domain() == before


def test_bundle_is_written_atomically(tmp_path, venue):
    door_a, _, _ = venue
    path = tmp_path / "out.jsonl.gz"
    export_kiosk(door_a.db, path)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    manifest = json.loads(gzip.decompress(path.read_bytes()).split(b"\n", 1)[0])
    assert set(manifest) >= {"protocol", "programs", "sha256", "sig", "origin", "public_key", "lines"}
