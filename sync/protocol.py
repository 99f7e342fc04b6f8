"""The sync protocol's shapes: version, batch limits, the error type, and body encoding.

One protocol serves a kiosk talking to the central server, two kiosks at one venue, and a USB
bundle. Every request and answer is a JSON object, optionally gzip-compressed; errors read
`{"ok": false, "reason": CODE, "error": MESSAGE}`.
"""

import gzip
import json

from kiosk import safejson
from kiosk.errors import KioskError
from kiosk.trust import keys

PROTOCOL = 3  # 2: changes carry their origin's signature, batches the origins' public keys; 3: program keys
#   leave the change log (a row carries `key_check`), hello hands them over, bundles are sealed
BATCH_CHANGES = 500
BATCH_BYTES = 1024 * 1024          # uncompressed JSON of one batch, roughly
MAX_REQUEST_BYTES = 8 * 1024 * 1024  # compressed or not, refused before it is read
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a gzip bomb stops here
MAX_ENROL_BYTES = 16 * 1024  # enrolment is unauthenticated: a code, an origin, a key, a name
SKEW_FLAG_SECONDS = 600

class SyncError(KioskError):
    """A refused sync request or a failed sync."""


def dumps(obj) -> bytes:
    """Canonical compact JSON bytes (sorted keys, UTF-8): what is signed and hashed."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def encode_body(obj, compress: bool = True) -> tuple[bytes, dict]:
    """The request body bytes and the headers that describe them."""
    raw = dumps(obj)
    headers = {"Content-Type": "application/json"}
    if compress and len(raw) > 1024:
        raw = gzip.compress(raw, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return raw, headers


def decode_body(raw: bytes, encoding: str | None, limit: int = MAX_INFLATED_BYTES) -> dict:
    """Reads a request body (inflated to at most `limit` bytes) into an object; raises
    SyncError("bad_json") for anything else, deep nesting included."""
    if len(raw) > limit:
        raise SyncError("payload_too_large", "body exceeds the limit")
    if encoding == "gzip":
        raw = _inflate(raw, limit)
    elif encoding not in (None, "", "identity"):
        raise SyncError("bad_request", f"unsupported Content-Encoding {encoding!r}")
    try:
        obj = safejson.loads(raw)  # the depth is checked before the parser recurses
    except (ValueError, UnicodeDecodeError) as exc:
        raise SyncError("bad_json", f"body is not JSON: {exc.__class__.__name__}") from None
    if not isinstance(obj, dict):
        raise SyncError("bad_json", "body must be a JSON object")
    return obj


def _inflate(raw: bytes, limit: int) -> bytes:
    decompressor = gzip.zlib.decompressobj(16 + gzip.zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, limit)
    except gzip.zlib.error as exc:
        raise SyncError("bad_json", f"body is not valid gzip: {exc}") from None
    if decompressor.unconsumed_tail:
        raise SyncError("payload_too_large", "inflated body exceeds the limit")
    return out


def check_protocol(body: dict) -> None:
    """Refuses a request from a newer (or missing) protocol version."""
    version = body.get("protocol")
    if version != PROTOCOL:
        raise SyncError("protocol_version", f"protocol {version!r} is not supported (this side speaks {PROTOCOL}): update this kiosk")


def check_batch(body: dict) -> tuple[str, list[dict]]:
    """A push body's program id and changes, checked for shape and partition."""
    check_protocol(body)
    program_id, changes = body.get("program_id"), body.get("changes")
    if not isinstance(program_id, str) or not program_id:
        raise SyncError("bad_request", "a batch needs a program_id")
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise SyncError("bad_request", "changes must be a list of objects")
    if len(changes) > 5 * BATCH_CHANGES:
        raise SyncError("payload_too_large", f"{len(changes)} changes in one batch")
    for change in changes:
        if change.get("program_id") != program_id:
            raise SyncError("wrong_program", f"change of program {change.get('program_id')!r} in a batch of {program_id!r}")
    return program_id, changes


PULL_LIMIT = 2000


def check_keys(body: dict) -> dict[str, str] | None:
    """The origins' public keys a batch brings (origin -> hex), checked for shape only."""
    found = body.get("keys")
    if found is None:
        return None
    if not isinstance(found, dict) or len(found) > 5 * BATCH_CHANGES or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) == 64 for k, v in found.items()):
        raise SyncError("bad_request", "keys map origin ids to 64-digit hex public keys")
    return found


def check_pull(body: dict) -> tuple[str, dict[str, int], int]:
    """(program id, the puller's vector, batch size) of a pull request."""
    check_protocol(body)
    program_id = body.get("program_id")
    if not isinstance(program_id, str):
        raise SyncError("bad_request", "pull needs a program_id")
    limit = body.get("limit", 500)
    limit = min(limit, PULL_LIMIT) if isinstance(limit, int) and limit > 0 else 500
    return program_id, check_vector(body.get("vector")), limit


def check_vector(vector) -> dict[str, int]:
    """A version vector from the wire: origin -> non-negative int."""
    if vector is None:
        return {}
    if not isinstance(vector, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in vector.items()):
        raise SyncError("bad_request", "a vector maps origin ids to non-negative integers")
    return vector




same_change = keys.same_change  # one definition, for the sync modules


def split_batches(changes: list[dict], max_changes: int = BATCH_CHANGES, max_bytes: int = BATCH_BYTES):
    """Cuts a list of changes (in sending order) into batches of at most `max_changes` and about
    `max_bytes`, each cut where every origin's run ends at a change with a signature held
    (`kiosk.trust.keys.signed_cut`): a batch is cut shorter, or, if that leaves nothing, runs on to the
    next signed change (up to CUT_REACH changes)."""
    start = 0
    while start < len(changes):
        count, size = 0, 0
        for change in changes[start:start + max_changes]:
            length = len(dumps(change))
            if count and size + length > max_bytes:
                break
            count, size = count + 1, size + length
        cut = keys.signed_cut(changes[start:start + max(keys.CUT_REACH, count)], count)
        if not cut:
            raise SyncError("bad_signature", f"no signed change to end a batch at within {keys.CUT_REACH} changes")
        yield changes[start:start + cut]
        start += cut
