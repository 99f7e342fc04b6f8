"""USB bundles: the sync batches in a `.jsonl.gz` file, for venues with no network at all.

Line 1 is the manifest: protocol version, the programs with their vector, change count and
`key_check`, the number of batch lines, the sha256 of everything after the manifest line, the
writer's origin and public key, and the writer's Ed25519 signature of the manifest. Each further
line is one batch `{"program_id", "keys", "sealed"}`: the origins' public keys, and the changes
(each origin's run chained and signed at its end, see kiosk.trust.keys) compressed and sealed with AES-256-GCM under the program's data
key (kiosk.trust.programkeys), the program id bound in. No key is in a bundle: a lost stick gives away
no name, phone or ID hash, and nobody can alter a bundle or make one in another replica's name.
A bundle is written to a temporary file and renamed, so a file that exists is whole; a reader
still refuses a truncated or altered file whole, before applying anything. Importing the same
bundle twice is a no-op (resends are no-ops).

A kiosk that never sees a network needs the program's key once, on paper: `kiosk program key`
prints it on a kiosk that has it, `kiosk import-bundle --program-key` types it in.
"""

import base64
import gzip
import hashlib
import logging
import os
import zlib
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk import safejson
from kiosk.clock import iso, now_utc
from kiosk.paths import write_atomically
from kiosk.store import changes
from kiosk.store.db import device_id, origin_key, transaction
from kiosk.trust import keys, programkeys
from sync import replica
from sync.protocol import BATCH_BYTES, PROTOCOL, SyncError, dumps, split_batches

log = logging.getLogger(__name__)
KIND = "attendance-kiosk-bundle"
MAX_LINE_BYTES = 4 * BATCH_BYTES       # one batch line (about 1 MB of JSON) with room to spare
MAX_INFLATED_BYTES = 128 * 1024 * 1024  # a whole bundle, inflated


def _unsigned(manifest: dict) -> bytes:
    return dumps({k: v for k, v in manifest.items() if k != "sig"})


def _aad(program_id: str) -> bytes:
    return f"{KIND}\x1f{program_id}".encode()


def seal(key_hex: str, program_id: str, batch: list[dict]) -> str:
    """A batch's changes, compressed and sealed for the program (base64 of nonce and ciphertext)."""
    nonce = os.urandom(12)
    sealed = AESGCM(programkeys.data_key(key_hex, program_id)).encrypt(
        nonce, zlib.compress(dumps(batch), 6), _aad(program_id))
    return base64.b64encode(nonce + sealed).decode()


def unseal(key_hex: str, program_id: str, text, limit: int = MAX_LINE_BYTES) -> tuple[list[dict], int]:
    """The changes of a sealed batch and the size of their JSON; "bundle_tampered" if it was
    altered or sealed otherwise, "payload_too_large" past `limit` bytes inflated."""
    try:
        raw = base64.b64decode(text, validate=True)
        plain = AESGCM(programkeys.data_key(key_hex, program_id)).decrypt(raw[:12], raw[12:], _aad(program_id))
        inflater = zlib.decompressobj()
        body = inflater.decompress(plain, limit)
        if inflater.unconsumed_tail:
            raise SyncError("payload_too_large", "a batch of the bundle inflates past the limit")
        found = safejson.loads(body)
    except (ValueError, TypeError, InvalidTag, zlib.error):
        raise SyncError("bundle_tampered", "a sealed batch of the bundle does not open with the program's key") from None
    if not isinstance(found, list):
        raise SyncError("bundle_tampered", "a sealed batch is not a list of changes")
    return found, len(body)


def write_bundle(path, signer: keys.Signer, programs: dict[str, tuple[list[dict], dict]],
                 public_keys: dict[str, str], program_keys: dict[str, str]) -> dict:
    """Writes a bundle atomically, signed by the writer and sealed for each program; `programs`
    maps program id -> (changes, vector), `public_keys` holds the key of every origin in it,
    `program_keys` the key of every program (hex)."""
    missing = sorted(set(programs) - set(program_keys))
    if missing:
        raise SyncError("program_key_missing", f"no key of program {missing[0]} here to seal its changes with")
    lines = []
    for program_id, (found, _vector) in sorted(programs.items()):
        for batch in split_batches(found):
            origins = {c["origin"] for c in batch}
            lines.append(dumps({"program_id": program_id,
                                "keys": {o: public_keys[o] for o in sorted(origins) if o in public_keys},
                                "sealed": seal(program_keys[program_id], program_id, batch)}) + b"\n")
    content = b"".join(lines)
    manifest = {
        "kind": KIND, "protocol": PROTOCOL, "created_at": iso(now_utc()), "origin": signer.origin,
        "public_key": signer.public_key,
        "programs": {pid: {"vector": vector, "changes": len(found), "key_check": programkeys.key_check(program_keys[pid])}
                     for pid, (found, vector) in programs.items()},
        "lines": len(lines), "sha256": hashlib.sha256(content).hexdigest(),
    }
    manifest["sig"] = signer.sign_bytes(_unsigned(manifest))
    write_atomically(path, gzip.compress(dumps(manifest) + b"\n" + content, mtime=0))
    return manifest


def read_bundle(path, holds, trust_new: bool = False, key_for=lambda program_id: None,
                typed_key: str | None = None) -> tuple[dict, list[dict]]:
    """Reads, checks and opens a whole bundle; returns (manifest, batches) or raises SyncError.

    The manifest must be signed by the writer's origin key (its id proves the key), the content
    must match the manifest's hash, and every origin's run inside is chained and signed by that origin (checked
    when it is applied). `holds(program_id)` says whether this side serves a program; another is
    refused ("wrong_program") unless `trust_new` (a first import onto an empty kiosk). Each batch
    opens with `key_for(program_id)` (hex), or with `typed_key` for the program it is the key of
    (the manifest's `key_check` tells); each batch gains its `changes`.
    """
    manifest, lines, digest, whole = _read_lines(Path(path), _signed_manifest)
    count = len(lines) if whole else len(lines) - 1
    if count < manifest["lines"] or not whole:
        raise SyncError("bundle_truncated", f"the bundle holds {count} of {manifest['lines']} batches: it was cut short")
    if digest != manifest["sha256"] or count != manifest["lines"]:
        raise SyncError("bundle_tampered", "the bundle's content does not match its manifest")
    batches = [_batch(line) for line in lines]
    for program_id in manifest["programs"]:
        if not holds(program_id) and not trust_new:
            raise SyncError("wrong_program", f"this side does not hold program {program_id} yet")
    if any(b.get("program_id") not in manifest["programs"] for b in batches):
        raise SyncError("bundle_tampered", "a batch of a program not in the manifest")
    opening = _opening_keys(manifest, key_for, typed_key)
    budget = MAX_INFLATED_BYTES
    for batch in batches:
        batch["changes"], size = unseal(opening[batch["program_id"]], batch["program_id"], batch.pop("sealed"),
                                        min(MAX_LINE_BYTES, budget))
        budget -= size
    return manifest, batches


def typed_programs(manifest: dict, typed_key: str | None) -> list[str]:
    """The programs of a bundle whose key (by the manifest's `key_check`) is the one typed in."""
    if not typed_key:
        return []
    return [pid for pid, entry in manifest["programs"].items()
            if isinstance(entry, dict) and programkeys.matches(typed_key, entry.get("key_check"))]


def _opening_keys(manifest: dict, key_for, typed_key: str | None) -> dict[str, str]:
    """The key that opens each program of the bundle: the one held here, else the one typed in."""
    found, fits = {}, set(typed_programs(manifest, typed_key))
    for program_id, entry in manifest["programs"].items():
        check = entry.get("key_check") if isinstance(entry, dict) else None
        key = key_for(program_id)
        if program_id in fits:
            # the typed key is proven by the manifest; one held here may be a wrong one kept
            # before the program's row arrived (it goes when the row does, see kiosk.store.changes)
            key = key if key and programkeys.matches(key, check) else typed_key
        if key is None and typed_key:
            raise SyncError("bad_program_key", f"the key typed in is not the key of program {program_id}")
        if key is None:
            raise SyncError("program_key_missing", f"no key of program {program_id} here to open its changes with")
        if not programkeys.matches(key, check):
            raise SyncError("bad_program_key", f"the key held here of program {program_id} is not the bundle's")
        found[program_id] = key
    if typed_key and not fits:
        raise SyncError("bad_program_key", "the key typed in is the key of no program in this bundle")
    return found


def _signed_manifest(head: bytes) -> dict:
    manifest = _parse_manifest(head)
    if not keys.certifies(manifest.get("origin"), manifest.get("public_key")) or not keys.verify_bytes(
            manifest["public_key"], _unsigned(manifest), manifest.get("sig")):
        raise SyncError("bundle_tampered", "the bundle is not signed by the replica it names as its writer")
    return manifest


def _batch(line: bytes) -> dict:
    try:
        batch = safejson.loads(line)
    except ValueError:
        raise SyncError("bundle_tampered", "a batch line is not JSON") from None
    if not isinstance(batch, dict) or not isinstance(batch.get("sealed"), str) or "changes" in batch:
        raise SyncError("bundle_tampered", "a batch line is not a sealed batch")
    return batch


def _read_lines(path: Path, check_head) -> tuple[dict, list[bytes], str, bool]:
    """The manifest (`check_head(line)`, before anything else is read), the batch lines, their
    sha256, and whether the last line was whole.

    Streamed and bounded: a line longer than MAX_LINE_BYTES or a bundle inflating past
    MAX_INFLATED_BYTES is refused as soon as it is seen (a small gzip bomb never fills memory).
    """
    digest, lines, total, whole = hashlib.sha256(), [], 0, True
    try:
        with gzip.open(path, "rb") as stream:
            head = stream.readline(MAX_LINE_BYTES + 1)
            if len(head) > MAX_LINE_BYTES:
                raise SyncError("payload_too_large", "the bundle's manifest is larger than any manifest")
            manifest = check_head(head.rstrip(b"\n"))
            while True:
                line = stream.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if len(line) > MAX_LINE_BYTES:
                    raise SyncError("payload_too_large", "a line of the bundle is larger than any batch")
                total += len(line)
                if len(lines) >= manifest["lines"]:
                    raise SyncError("bundle_tampered", "the bundle holds more batches than its manifest says")
                if total > MAX_INFLATED_BYTES:
                    raise SyncError("payload_too_large", "the bundle inflates past the limit")
                digest.update(line)
                whole = line.endswith(b"\n")
                lines.append(line.rstrip(b"\n"))
    except EOFError:
        raise SyncError("bundle_truncated", "the bundle file was cut short") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise SyncError("bundle_tampered", f"the bundle file is damaged: {exc}") from None
    return manifest, lines, digest.hexdigest(), whole


def _parse_manifest(head: bytes) -> dict:
    try:
        manifest = safejson.loads(head)
    except ValueError:
        raise SyncError("bundle_tampered", "the bundle has no readable manifest") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise SyncError("bundle_tampered", "this file is not a sync bundle")
    if manifest.get("protocol") != PROTOCOL:
        raise SyncError("protocol_version", f"bundle protocol {manifest.get('protocol')!r} is not supported")
    if not isinstance(manifest.get("programs"), dict) or not isinstance(manifest.get("lines"), int):
        raise SyncError("bundle_tampered", "the bundle's manifest is incomplete")
    return manifest


# --- a kiosk's side -------------------------------------------------------------------------------

def export_kiosk(db, path, programs: list[str] | None = None) -> dict:
    """Writes every change this kiosk holds (of the given programs, default all) into a bundle."""
    held = changes.local_programs(db)
    chosen = {}
    for program_id in programs or held:
        if program_id not in held:
            raise SyncError("unknown_program", f"program {program_id} is not on this kiosk")
        chosen[program_id] = (changes.changes_since(db, program_id, {}, limit=-1), changes.vector(db, program_id))
    origins = {c["origin"] for found, _v in chosen.values() for c in found}
    signer = keys.Signer(origin_key(db, device_id(db)))
    return write_bundle(path, signer, chosen, changes.keys_for(db, origins), programkeys.shareable(db, chosen))


def import_kiosk(db, path, trust_new: bool = False, program_key: str | None = None) -> dict:
    """Applies a bundle whole, in one transaction; returns counts (a second import applies 0).

    `program_key` is a key typed from paper (kiosk.trust.programkeys.parse_key) for a program this
    kiosk has no key of; it is kept once the bundle is in.
    """
    held = set(changes.local_programs(db))
    typed = programkeys.parse_key(program_key) if program_key else None
    manifest, batches = read_bundle(path, held.__contains__, trust_new, lambda pid: programkeys.key_of(db, pid), typed)
    applied = refused = 0
    with transaction(db):
        for batch in batches:
            kept, dropped = replica.held_back(db, batch["program_id"], batch["changes"])
            refused += dropped
            applied += replica.apply_batch(db, batch["program_id"], kept, batch.get("keys"))
        for program_id in typed_programs(manifest, typed):
            programkeys.store(db, program_id, typed, via="typed in")
    total = sum(len(b["changes"]) for b in batches)
    return {"programs": sorted(manifest["programs"]), "changes": total, "applied": applied, "refused": refused}


# --- the central server's side -------------------------------------------------------------------

def export_central(storage, path, programs: list[str] | None = None) -> dict:
    held = storage.programs()
    chosen = {}
    for program_id in programs or held:
        if program_id not in held:
            raise SyncError("unknown_program", f"program {program_id} is not on the central server")
        found, _ = storage.pull(program_id, {}, limit=10 ** 9)
        chosen[program_id] = (found, storage.vector(program_id))
    origins = {c["origin"] for found, _v in chosen.values() for c in found}
    return write_bundle(path, storage.signer, chosen, storage.keys_for(origins), storage.program_keys_for(chosen))


def import_central(storage, path, trust_new: bool = True, program_key: str | None = None) -> dict:
    """Stores a bundle on the central server whole; a program it never saw is taken on trust.
    `program_key` (typed from paper) opens a program whose key is not held here, and is kept."""
    typed = programkeys.parse_key(program_key) if program_key else None
    manifest, batches = read_bundle(path, set(storage.programs()).__contains__, trust_new, storage.program_key, typed)
    before = storage.change_count()
    offered = {}
    for batch in batches:
        offered.update(batch.get("keys") or {})
    refused = storage.push_many([(b["program_id"], b["changes"]) for b in batches], source="bundle", keys=offered)
    for program_id in typed_programs(manifest, typed):
        try:  # the changes are in: a key the program's row does not commit to is only not kept
            storage.store_program_key(program_id, typed, added_by="typed in")
        except SyncError:
            log.warning("the key typed in for program %s is not the one its row commits to", program_id)
    if refused:
        log.warning("bundle changes of revoked devices refused", extra={"act": "bundle", "refused": refused})
    total = sum(len(b["changes"]) for b in batches)
    return {"programs": sorted(manifest["programs"]), "changes": total, "applied": storage.change_count() - before,
            "refused": refused}
