"""USB bundles: the sync batches in a `.jsonl.gz` file, for venues with no network at all.

Line 1 is the manifest: protocol version, the programs with their vector and change count, the
number of batch lines, the sha256 of everything after the manifest line, and per program an
HMAC-SHA256 of the manifest with that program's key. Each further line is one batch
`{"program_id", "changes"}`. A bundle is written to a temporary file and renamed, so a file that
exists is whole; a reader still refuses a truncated or altered file whole, before applying
anything. Importing the same bundle twice is a no-op (resends are no-ops).
"""

import gzip
import hashlib
import hmac
import json
import os
import zlib
from pathlib import Path

from kiosk import changes
from kiosk.clock import iso, now_utc
from kiosk.db import device_id, transaction
from sync import replica
from sync.protocol import PROTOCOL, SyncError, dumps, split_batches

KIND = "attendance-kiosk-bundle"


def _mac(key_hex: str, manifest: dict) -> str:
    unsigned = {k: v for k, v in manifest.items() if k != "hmac"}
    return hmac.new(bytes.fromhex(key_hex), dumps(unsigned), hashlib.sha256).hexdigest()


def write_bundle(path, origin: str, programs: dict[str, tuple[list[dict], dict, str]]) -> dict:
    """Writes a bundle atomically; `programs` maps program id -> (changes, vector, key hex)."""
    lines = []
    for program_id, (found, _vector, _key) in sorted(programs.items()):
        for batch in split_batches(found):
            lines.append(dumps({"program_id": program_id, "changes": batch}) + b"\n")
    content = b"".join(lines)
    manifest = {
        "kind": KIND, "protocol": PROTOCOL, "created_at": iso(now_utc()), "origin": origin,
        "programs": {pid: {"vector": vector, "changes": len(found)} for pid, (found, vector, _k) in programs.items()},
        "lines": len(lines), "sha256": hashlib.sha256(content).hexdigest(),
    }
    manifest["hmac"] = {pid: _mac(key, manifest) for pid, (_f, _v, key) in programs.items()}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(dumps(manifest) + b"\n")
        out.write(content)
    with open(tmp, "rb+") as done:
        os.fsync(done.fileno())
    os.replace(tmp, path)
    return manifest


def read_bundle(path, key_for, trust_new: bool = False) -> tuple[dict, list[dict]]:
    """Reads and checks a whole bundle; returns (manifest, batches) or raises SyncError.

    `key_for(program_id)` gives the program key this side holds, or None: such a program is
    refused ("wrong_program") unless `trust_new`, when the key inside the bundle's own program
    record is used (integrity only: a first import onto an empty kiosk).
    """
    head, content = _read_lines(Path(path))
    manifest = _parse_manifest(head)
    count = content.count(b"\n")
    if count < manifest["lines"] or not content.endswith(b"\n") and content:
        raise SyncError("bundle_truncated", f"the bundle holds {count} of {manifest['lines']} batches: it was cut short")
    if hashlib.sha256(content).hexdigest() != manifest["sha256"] or count != manifest["lines"]:
        raise SyncError("bundle_tampered", "the bundle's content does not match its manifest")
    batches = [json.loads(line) for line in content.splitlines()]
    for program_id in manifest["programs"]:
        key = key_for(program_id) or (_key_inside(batches, program_id) if trust_new else None)
        if key is None:
            raise SyncError("wrong_program", f"this side does not hold program {program_id} yet")
        if not hmac.compare_digest(_mac(key, manifest), manifest.get("hmac", {}).get(program_id, "")):
            raise SyncError("bundle_tampered", f"the bundle's signature for program {program_id} is wrong")
    if any(b.get("program_id") not in manifest["programs"] for b in batches):
        raise SyncError("bundle_tampered", "a batch of a program not in the manifest")
    return manifest, batches


def _read_lines(path: Path) -> tuple[bytes, bytes]:
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read()
    except EOFError:
        raise SyncError("bundle_truncated", "the bundle file was cut short") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise SyncError("bundle_tampered", f"the bundle file is damaged: {exc}") from None
    head, _, content = data.partition(b"\n")
    return head, content


def _parse_manifest(head: bytes) -> dict:
    try:
        manifest = json.loads(head)
    except ValueError:
        raise SyncError("bundle_tampered", "the bundle has no readable manifest") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise SyncError("bundle_tampered", "this file is not a sync bundle")
    if manifest.get("protocol") != PROTOCOL:
        raise SyncError("protocol_version", f"bundle protocol {manifest.get('protocol')!r} is not supported")
    if not isinstance(manifest.get("programs"), dict) or not isinstance(manifest.get("lines"), int):
        raise SyncError("bundle_tampered", "the bundle's manifest is incomplete")
    return manifest


def _key_inside(batches: list[dict], program_id: str) -> str | None:
    for batch in batches:
        for change in batch["changes"]:
            if change.get("entity") == "programs" and change.get("id") == program_id:
                key = change.get("payload", {}).get("signing_key")
                if key:
                    return key
    return None


# --- a kiosk's side -------------------------------------------------------------------------------

def kiosk_key(db, program_id: str) -> str | None:
    row = db.execute("select signing_key from programs where id = ?", [program_id]).fetchone()
    return row[0] if row else None


def export_kiosk(db, path, programs: list[str] | None = None) -> dict:
    """Writes every change this kiosk holds (of the given programs, default all) into a bundle."""
    chosen = {}
    for program_id in programs or changes.local_programs(db):
        key = kiosk_key(db, program_id)
        if key is None:
            raise SyncError("unknown_program", f"program {program_id} is not on this kiosk")
        chosen[program_id] = (changes.changes_since(db, program_id, {}, limit=-1), changes.vector(db, program_id), key)
    return write_bundle(path, device_id(db), chosen)


def import_kiosk(db, path, trust_new: bool = False) -> dict:
    """Applies a bundle whole, in one transaction; returns counts (a second import applies 0)."""
    manifest, batches = read_bundle(path, lambda pid: kiosk_key(db, pid), trust_new)
    applied = 0
    with transaction(db):
        for batch in batches:
            applied += replica.apply_batch(db, batch["program_id"], batch["changes"])
    total = sum(len(b["changes"]) for b in batches)
    return {"programs": sorted(manifest["programs"]), "changes": total, "applied": applied}


# --- the central server's side -------------------------------------------------------------------

def export_central(storage, path, programs: list[str] | None = None) -> dict:
    chosen = {}
    for program_id in programs or storage.programs():
        key = storage.program_key(program_id)
        if key is None:
            raise SyncError("unknown_program", f"program {program_id} has no key on the central server")
        found, _ = storage.pull(program_id, {}, limit=10 ** 9)
        chosen[program_id] = (found, storage.vector(program_id), key)
    return write_bundle(path, storage.server_id, chosen)


def import_central(storage, path, trust_new: bool = True) -> dict:
    """Stores a bundle on the central server whole; a program it never saw is taken on trust."""
    manifest, batches = read_bundle(path, storage.program_key, trust_new)
    before = storage.change_count()
    storage.push_many([(b["program_id"], b["changes"]) for b in batches], source="bundle")
    total = sum(len(b["changes"]) for b in batches)
    return {"programs": sorted(manifest["programs"]), "changes": total, "applied": storage.change_count() - before}
