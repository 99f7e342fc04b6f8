"""Keys by purpose, and the signatures that make each origin's changes its own.

* **Origin keys** (Ed25519): every origin (a device id, the central server's id) is derived from
  its public key - the id is the first 128 bits of SHA-256(public key), formatted as a UUID - so an
  id proves its key without a registry or a trust anchor, over the network, a peer or a USB stick.
  Each change extends its origin's hash chain (`chain_i = SHA-256(chain_{i-1} ‖ canonical change_i)`
  per program) and carries the origin's signature of that chain value: a relay can forward changes
  but cannot invent, alter, drop from the middle or reorder them, and one verified signature at the
  end of a run vouches for every change before it. The private key stays in the database of its
  device (`meta`), never in the change log or a bundle.
* **Personal values are signed through salted hashes** (`sealed`): a change that carries a
  person's name, phone or ID fields also carries a random `_salt`, and what is signed holds each
  such value only as SHA-256(salt ‖ field ‖ value). Erasing the person (kiosk.people.privacy)
  replaces the values and the salt by those hashes (`_erased`), on every replica, and every
  signature still verifies; without the salt a hash cannot be tested against guessed names.
* **Signatures are checked per run, and kept only once checked**: a receiver checks each origin's
  run in a batch at its end and at each checkpoint (`vouching`), keeps those signatures and stores
  no other (an unchecked signature received is never handed on), and every sender cuts its batches
  where each origin's run ends at a change whose signature it holds (`signed_cut`). Checkpoints
  (an origin's last change of each CHECKPOINT_MS of clock time) are the same on every replica, so
  any replica can cut a long history at a moment common to all its origins.
* **Badge codes** use the program's key (`kiosk.trust.programkeys`, never in the change log or a bundle),
  **national-ID hashes** a key of this computer kept outside the data folder (`kiosk.thai`),
  **bundles** are signed with the origin key of the replica that wrote them and sealed with a key
  derived from the program's key (`sync.bundle`).
"""

import hashlib
import json
import os
import secrets
import sys
import threading
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS = "0" * 64
# The fields that name a person, signed only through salted hashes (`sealed`).
PERSONAL = {"participants": ("title", "first_name", "last_name", "position", "organization", "community",
                             "phone", "nid_hash", "nid_last4", "source_key")}
# what `sealed` leaves out of a payload: its personal fields, the salt and the hashes of erased ones
_SEALED = {entity: frozenset((*fields, "_salt", "_erased")) for entity, fields in PERSONAL.items()}
_NONE = frozenset(("_salt", "_erased"))
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def new_origin() -> tuple[str, str]:
    """A fresh origin: (its id, its private key as hex)."""
    private = Ed25519PrivateKey.generate()
    return origin_of(public_hex(private)), private.private_bytes_raw().hex()


def public_hex(private) -> str:
    """The public key (hex) of a private key (an Ed25519PrivateKey or its hex)."""
    if isinstance(private, str):
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private))
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def origin_of(public_key_hex: str) -> str:
    """The origin id a public key stands for."""
    digest = hashlib.sha256(bytes.fromhex(public_key_hex)).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def certifies(origin: str, public_key_hex) -> bool:
    """True if `public_key_hex` is the key of `origin` (the id is derived from it)."""
    try:
        return isinstance(public_key_hex, str) and len(public_key_hex) == 64 and origin_of(public_key_hex) == origin
    except ValueError:
        return False


def payload_text(payload: dict) -> str:
    """A payload as canonical JSON text (sorted keys, compact, UTF-8 kept): what is signed, and
    what the central server stores."""
    return _ENCODER.encode(payload)


def personal_hash(salt: str, field: str, value) -> str:
    """A personal value as it is signed and kept once erased: '#' + SHA-256(salt ‖ field ‖ value)."""
    return _hashed(bytes.fromhex(salt), field, value)


def _hashed(salt: bytes, field: str, value) -> str:
    return "#" + hashlib.sha256(b"".join((salt, field.encode(), b"\x1f", _ENCODER.encode(value).encode()))).hexdigest()


def sealed(entity: str, payload: dict) -> dict:
    """The payload as its signature covers it: personal values (PERSONAL) as salted hashes, those
    already erased as the hashes kept; a payload with no `_salt` nor `_erased` as it is."""
    salt, erased = payload.get("_salt"), payload.get("_erased")
    if salt is None and erased is None:
        return payload
    personal = _SEALED.get(entity, _NONE)
    out = {k: v for k, v in payload.items() if k not in personal}
    if salt is not None:
        raw = bytes.fromhex(salt)
        out.update((f, _hashed(raw, f, payload[f])) for f in PERSONAL.get(entity, ()) if f in payload)
    out.update(erased or {})
    return out


def erase_values(entity: str, payload: dict) -> dict:
    """The payload with its personal values replaced by the hashes its signature covers (and no
    salt): what every replica keeps of a change about an erased person."""
    if payload.get("_salt") is None:
        return payload
    personal = PERSONAL.get(entity, ())
    view = sealed(entity, payload)
    kept = {k: v for k, v in payload.items() if k not in ("_salt", "_erased") and k not in personal}
    hashes = {**payload.get("_erased", {}), **{f: view[f] for f in personal if f in payload}}
    return {**kept, "_erased": hashes} if hashes else kept


def canonical(change: dict, payload: str | None = None) -> bytes:
    """The bytes of a change that its signature covers: its fields, unit-separated, with the
    payload as canonical JSON (`payload` if the caller has it already), personal values sealed."""
    fields = change.get("payload")
    if fields is None:  # the caller holds the text only (a migration reading stored rows)
        if '"_salt"' not in payload and '"_erased"' not in payload:
            fields = {}  # nothing sealed: the text is what is signed
        else:
            fields = json.loads(payload)
    view = sealed(change["entity"], fields)
    if payload is None or view is not fields:
        payload = payload_text(view)
    return "\x1f".join((change["program_id"], change["origin"], str(change["seq"]), change["entity"], change["id"],
                        change["op"], change["hlc"], payload)).encode()


def same_change(a: dict, b: dict) -> bool:
    """True if two changes with the same (program, origin, seq) carry the same content (the
    signature aside: a replica keeps only the signatures it checked), a person's values erased
    on one side and not on the other included."""
    if not all(a.get(k) == b.get(k) for k in ("entity", "id", "op", "hlc")):
        return False
    return a.get("payload") == b.get("payload") or (
        isinstance(a.get("payload"), dict) and isinstance(b.get("payload"), dict)
        and sealed(a["entity"], a["payload"]) == sealed(b["entity"], b["payload"]))


def next_chain(previous: str | None, change: dict, payload: str | None = None) -> str:
    """The origin's chain value after `change`, from the value after the change before it."""
    return hashlib.sha256(bytes.fromhex(previous or GENESIS) + canonical(change, payload)).hexdigest()


class Signer:
    """Signs chain values with one origin's private key (the key is parsed once)."""

    def __init__(self, private_hex: str):
        self._key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
        self.public_key = public_hex(self._key)
        self.origin = origin_of(self.public_key)

    def sign(self, chain: str) -> str:
        return self._key.sign(bytes.fromhex(chain)).hex()

    def sign_bytes(self, data: bytes) -> str:
        """A signature (hex) of arbitrary bytes: a bundle's manifest."""
        return self._key.sign(data).hex()


_verifiers: dict[str, Ed25519PublicKey] = {}


def verify(public_key_hex: str, chain: str, signature) -> bool:
    """True if `signature` (hex) is the key's signature of the chain value."""
    try:
        key = _verifiers.get(public_key_hex)
        if key is None:
            key = _verifiers[public_key_hex] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature), bytes.fromhex(chain))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# An origin's last change of each 100 ms of HLC time is a checkpoint. Bulk writes (a roster, a
# catch-up) cost one check per 100 ms of them; a change trickling in alone is checked itself. Any
# replica can cut a batch at every interval's end, so a batch stays within CUT_REACH unless more
# than that many changes of interleaved origins fall into one interval.
CHECKPOINT_MS = 100
CUT_REACH = 2500  # the most changes a batch extended to a signed change may hold (what a push may carry)


def _interval(change: dict) -> int:
    """The checkpoint interval of a change's HLC (validated before: `physical-counter-origin`)."""
    return int(change["hlc"].split("-", 1)[0]) // CHECKPOINT_MS


def vouching(run: list[dict]) -> list[bool]:
    """Which changes of one origin's run (contiguous, in seq order) a receiver checks the signature
    of, and keeps: the last one, and each that is its origin's last in a checkpoint interval."""
    ends = [_interval(a) != _interval(b) for a, b in zip(run, run[1:])]
    return [*ends, True] if run else []


def signed_cut(changes: list[dict], limit: int) -> int:
    """How many of `changes` (in sending order) one batch takes, so that each origin's last change
    in it carries a signature: the longest such prefix of at most `limit` changes, else the
    shortest longer one within `changes` (the caller bounds it); 0 if there is none."""
    unsigned: set[str] = set()
    best = 0
    for i, change in enumerate(changes, 1):
        if change.get("sig"):
            unsigned.discard(change["origin"])
        else:
            unsigned.add(change["origin"])
        if not unsigned:
            best = i
        if i >= limit and best:
            return best
    return best


def verify_bytes(public_key_hex: str, data: bytes, signature) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(bytes.fromhex(signature), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- the national-ID hashing key ------------------------------------------------------------------

ID_KEY_FILE = "id-hash.key"
_id_key: dict[str, bytes] = {}
_id_key_lock = threading.Lock()


def secrets_dir() -> Path:
    """Where this computer keeps secrets that must not travel with a copied data folder:
    `KIOSK_SECRETS`, else the per-user configuration folder (not the data folder)."""
    explicit = os.environ.get("KIOSK_SECRETS")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "attendance-kiosk" / "secrets"


def id_hash_key() -> bytes:
    """The key national IDs are hashed with on this computer, made on first use (0600 in a 0700
    folder outside the data folder). It never goes into the change log, a bundle or kiosk.db, so
    a hash cannot be tested against candidate IDs by whoever holds a bundle, a synced database
    or a copied data folder."""
    folder = secrets_dir()
    with _id_key_lock:
        found = _id_key.get(str(folder))
        if found is None:
            found = _id_key[str(folder)] = _load_or_make(folder / ID_KEY_FILE)
        return found


def _load_or_make(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return bytes.fromhex(path.read_text().strip())
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())
