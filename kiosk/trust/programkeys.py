"""A program's key: badge codes and certificates are signed with it, bundles are sealed with a key
derived from it, and it never travels in the change log or a bundle.

Each program has one random 256-bit key, made on the kiosk that creates the program and kept in
the local table `program_keys` (never synced as a change). What travels instead is the program's
`key_check`, a one-way commitment to the key (HMAC of a fixed text), in the signed `programs` row,
and the program's id carries the same check in its random bits (`program_id_for`): any replica can
tell a genuine key from a wrong one, whoever hands it over, and no device can give a program
another check, not even by delivering its first row.

How a kiosk gets a program's key:

* from the central server, in the answer to `hello`, for the programs the device is enrolled
  for (the kiosk that made the program hands it over in its own `hello`);
* from a paired laptop at the venue, in the same way;
* on paper, for a kiosk that never sees a network: `kiosk program key` prints it in groups of
  four, and `kiosk import-bundle --program-key` or `kiosk program key-add` types it in.

Bundles are sealed with `data_key` (HKDF-SHA256 of the program key): a lost USB stick gives
away no name, phone or ID hash without the key, which is never on the stick.
"""

import base64
import hashlib
import hmac
import re
import secrets
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.clock import iso, new_id, now_utc
from kiosk.errors import KioskError
from kiosk.store.db import transaction

_CHECK_TEXT = b"attendance-kiosk program key check"
_DATA_INFO = b"attendance-kiosk bundle sealing"
_SEPARATORS = re.compile(r"[\s\-]+")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_MISREAD = str.maketrans("018", "OIB")  # base32 has no 0, 1 or 8: a person typing them meant these


class ProgramKeyError(KioskError):
    """A program's key is missing here, or the one given is not that program's."""


def new_key() -> str:
    """A fresh program key (hex)."""
    return secrets.token_hex(32)


def key_check(key_hex: str) -> str:
    """The public commitment to a key that the program's row carries (32 hex digits)."""
    return hmac.new(bytes.fromhex(key_hex), _CHECK_TEXT, hashlib.sha256).hexdigest()[:32]


def data_key(key_hex: str, program_id: str) -> bytes:
    """The key that seals this program's bundles: derived one way, so it gives away no badge key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=program_id.encode(), info=_DATA_INFO).derive(
        bytes.fromhex(key_hex))


def format_key(key_hex: str) -> str:
    """A key for paper: 52 base32 letters and digits (2-7) in groups of four; `parse_key` reads a
    typed 0, 1 or 8 as the O, I or B it must be."""
    text = base64.b32encode(bytes.fromhex(key_hex)).decode().rstrip("=")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def parse_key(text: str) -> str:
    """A key typed from paper (groups, spaces, any case) or as hex; raises "bad_program_key"."""
    typed = _SEPARATORS.sub("", str(text or "")).lower()
    if _HEX.match(typed):
        return typed
    letters = typed.upper().translate(_MISREAD)
    try:
        raw = base64.b32decode(letters + "====", casefold=False)
    except ValueError:
        raw = b""
    # the last letter carries one bit of the key: a typo there that decodes all the same is refused
    if len(raw) != 32 or len(typed) != 52 or format_key(raw.hex()).replace("-", "") != letters:
        raise ProgramKeyError("bad_program_key", "a program key is 52 letters and digits (13 groups of four)")
    return raw.hex()


def matches(key_hex: str, check: str | None) -> bool:
    """True if `key_hex` is the key that `check` commits to."""
    if not (isinstance(check, str) and check.isascii() and check):  # a bundle's manifest may say anything
        return False
    return hmac.compare_digest(key_check(key_hex), check)


# A program's id carries its key check: the 74 random bits of its UUIDv7 are the check's first 74
# bits. Whoever delivers a program's first row cannot give it another key (that would take a key
# whose check matches 74 given bits, about 2^74 tries), nor give one to a program made before
# key checks (its id's random bits match no check anybody can find).
_RAND_A, _RAND_B = 12, 62


def program_id_for(key_hex: str) -> str:
    """A new program's id: a UUIDv7 of now whose random bits are the key's check."""
    stamp = uuid.UUID(new_id()).int >> 80  # the 48-bit millisecond timestamp
    bits = int(key_check(key_hex), 16) >> (128 - _RAND_A - _RAND_B)
    rand_a, rand_b = bits >> _RAND_B, bits & ((1 << _RAND_B) - 1)
    return str(uuid.UUID(int=(stamp << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b))


def id_commits(program_id, check) -> bool:
    """True if a program's id carries this key check (see program_id_for)."""
    try:
        value, expected = uuid.UUID(program_id).int, int(check, 16) >> (128 - _RAND_A - _RAND_B)
    except (TypeError, ValueError, AttributeError):
        return False
    if not (isinstance(check, str) and len(check) == 32):
        return False
    rand_a, rand_b = (value >> 64) & ((1 << _RAND_A) - 1), value & ((1 << _RAND_B) - 1)
    return (rand_a << _RAND_B) | rand_b == expected


# --- the local table ------------------------------------------------------------------------------

def _check_of(db, program_id: str) -> str | None:
    row = db.execute("select key_check from programs where id = ?", [program_id]).fetchone()
    return row[0] if row else None


def key_of(db, program_id: str) -> str | None:
    """This kiosk's key of a program (hex), or None."""
    row = db.execute("select key from program_keys where program_id = ?", [program_id]).fetchone()
    return row[0] if row else None


def store(db, program_id: str, key_hex: str, via: str) -> bool:
    """Keeps a program's key; False if one was held already. Refuses a key that the program's
    row (if held) does not commit to ("bad_program_key")."""
    check = _check_of(db, program_id)
    if check and not matches(key_hex, check):
        raise ProgramKeyError("bad_program_key", f"that is not the key of program {program_id}")
    return _insert(db, program_id, key_hex, via)


def _insert(db, program_id: str, key_hex: str, via: str) -> bool:
    return db.execute("insert into program_keys (program_id, key, via, added_at) values (?, ?, ?, ?)"
                      " on conflict(program_id) do nothing",
                      [program_id, key_hex, via, iso(now_utc())]).rowcount > 0


def offered(db, keys, via: str) -> int:
    """Keeps the keys another replica handed over (program id -> hex) for programs we lack a key
    of; a malformed or wrong one is left out. Returns how many were kept. Writes (one
    transaction) only when a key is new here: a hello that brings nothing new costs no commit."""
    fresh = {pid: key for pid, key in (keys.items() if isinstance(keys, dict) else ())
             if isinstance(pid, str) and isinstance(key, str) and _HEX.match(key) and key_of(db, pid) is None}
    kept = 0
    if fresh:
        with transaction(db):
            for program_id, key_hex in fresh.items():
                try:
                    kept += store(db, program_id, key_hex, via)
                except ProgramKeyError:
                    continue
    return kept


def drop_wrong(db, program_id: str) -> int:
    """Forgets a program's key that arrived before the program's row and turns out not to be its
    key (the change log calls this when a row's `key_check` lands, on every path). 1 or 0."""
    key, check = key_of(db, program_id), _check_of(db, program_id)
    if key is None or not check or matches(key, check):
        return 0
    db.execute("delete from program_keys where program_id = ?", [program_id])
    return 1


def badge_key(db, program_id: str) -> bytes:
    """The key that signs a program's badges; raises "program_key_missing" if this kiosk has none."""
    key = key_of(db, program_id)
    if key is None:
        raise ProgramKeyError("program_key_missing", f"this kiosk holds no key of program {program_id}")
    return bytes.fromhex(key)


def program_keys(db) -> dict[str, bytes]:
    """Program id -> badge key, for every program this kiosk holds a key of."""
    return {pid: bytes.fromhex(key) for pid, key in db.execute(
        "select k.program_id, k.key from program_keys k join programs p on p.id = k.program_id")}


def keyless_programs(db) -> list[str]:
    """Programs this kiosk holds rows of but no key (their badges cannot be checked here yet)."""
    return [r[0] for r in db.execute(
        "select id from programs where id not in (select program_id from program_keys)")]


def shareable(db, program_ids) -> dict[str, str]:
    """The keys this kiosk may hand to a replica that serves `program_ids` (hex)."""
    wanted = list(program_ids)
    if not wanted:
        return {}
    return dict(db.execute(f"select program_id, key from program_keys where program_id in"
                           f" ({', '.join('?' * len(wanted))})", wanted).fetchall())


def adopt_legacy(db, program_id: str, key_hex) -> None:
    """A program made before keys left the change log carries its key in its row's history:
    keep it as the key if this kiosk has none (such a key was never secret)."""
    if isinstance(key_hex, str) and _HEX.match(key_hex) and not _check_of(db, program_id):
        _insert(db, program_id, key_hex, "legacy")
