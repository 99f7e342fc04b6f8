"""Sealed backups: a backup that leaves the data folder (a USB stick) is encrypted and
authenticated, so that whoever finds the stick reads no name, phone or key in it, and can make
no backup that restores.

**The recovery key** is what a coordinator prints once, like a BitLocker recovery key: 48 digits
in 8 groups of 6, 128 random bits. Each group is a multiple of 11 below 720,896 (16 bits times
11), so a mistyped digit or two swapped neighbours are caught in the group where they happen,
before anything is decrypted. The laptop keeps the key derived from it (`sealing_key`, in the data
folder's settings, never in a backup); the digits themselves are shown once and kept nowhere.

**A sealed file** is a header (`MAGIC`, the key's 4-byte id, a random salt, the chunk size)
followed by chunks of the SQLite snapshot, each sealed with AES-256-GCM under a key derived from
the sealing key and the salt (one key per file), the header as associated data. A chunk's nonce
is its number and whether it is the last, so chunks cannot be dropped, reordered, or the file
cut at a chunk boundary without the reader noticing. Files are written and read a chunk at a
time: a large database is never held in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kiosk.errors import KioskError

MAGIC = b"KIOSK-SEALED-01\n"
CHUNK = 1024 * 1024
_HEADER = struct.Struct(">16s4s16sI")  # magic, key id, salt, chunk size
_TAG = 16
GROUPS, GROUP_DIGITS = 8, 6
_SEPARATORS = re.compile(r"[\s\-.]+")
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


class SealError(KioskError):
    """A recovery key that is missing, mistyped or not this backup's; a sealed file that fails."""


# --- the recovery key ------------------------------------------------------------------------------

def new_recovery_key() -> tuple[str, bytes]:
    """A fresh recovery key: (the digits to print, the sealing key derived from them)."""
    raw = secrets.token_bytes(2 * GROUPS)
    values = struct.unpack(f">{GROUPS}H", raw)
    return "-".join(f"{v * 11:0{GROUP_DIGITS}d}" for v in values), sealing_key(raw)


def parse_recovery_key(text: str) -> bytes:
    """The sealing key of a typed recovery key (spaces, dashes and Thai digits allowed);
    "recovery_key_mistyped" naming the first group that cannot be right."""
    digits = _SEPARATORS.sub("", str(text or "")).translate(_THAI_DIGITS)
    if not re.fullmatch(rf"\d{{{GROUPS * GROUP_DIGITS}}}", digits):
        raise SealError("recovery_key_mistyped", f"a recovery key is {GROUPS} groups of {GROUP_DIGITS} digits",
                        detail="length")
    values = []
    for number in range(GROUPS):
        group = int(digits[number * GROUP_DIGITS:(number + 1) * GROUP_DIGITS])
        if group % 11 or group // 11 > 0xFFFF:
            raise SealError("recovery_key_mistyped", f"group {number + 1} of the recovery key is mistyped",
                            detail=f"group {number + 1}")
        values.append(group // 11)
    return sealing_key(struct.pack(f">{GROUPS}H", *values))


def sealing_key(raw: bytes) -> bytes:
    """The 256-bit key that seals backups, derived from the recovery key's 128 bits."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"attendance-kiosk backup sealing").derive(raw)


def key_id(key: bytes) -> str:
    """A short public name of a sealing key (printed with it, shown on the Health page, written
    in each file it seals) that tells which key a backup needs and gives away nothing of it."""
    return _tag_name(_key_tag(key))


def _key_tag(key: bytes) -> bytes:
    return hashlib.sha256(b"attendance-kiosk backup key id" + key).digest()[:4]


# --- sealed files ----------------------------------------------------------------------------------

def is_sealed(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def seal(source: Path, target: Path, key: bytes, chunk: int | None = None) -> str:
    """Writes `source` sealed under `key` into `target` (flushed to disk); the sha256 of `source`."""
    chunk, salt = chunk or CHUNK, os.urandom(16)
    header = _HEADER.pack(MAGIC, _key_tag(key), salt, chunk)
    cipher, digest = AESGCM(_file_key(key, salt)), hashlib.sha256()
    with open(source, "rb") as plain, open(target, "wb") as out:
        out.write(header)
        for number in itertools.count():
            piece = plain.read(chunk)
            digest.update(piece)
            last = len(piece) < chunk
            out.write(cipher.encrypt(_nonce(number, last), piece, header))
            if last:
                break
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def unseal(source: Path, target: Path, key: bytes) -> str:
    """Writes the opened content of the sealed `source` into `target`; its sha256. Raises
    SealError: "recovery_key_wrong" (another key's file), "backup_damaged" (altered or cut short)."""
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for piece in chunks(source, key):
            digest.update(piece)
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def opened_digest(source: Path, key: bytes) -> str:
    """The sha256 of a sealed file's content, every chunk authenticated (nothing is written)."""
    digest = hashlib.sha256()
    for piece in chunks(source, key):
        digest.update(piece)
    return digest.hexdigest()


def chunks(source: Path, key: bytes):
    """The authenticated content of a sealed file, a chunk at a time."""
    with open(source, "rb") as f:
        header = f.read(_HEADER.size)
        magic, tag, salt, chunk = _HEADER.unpack(header) if len(header) == _HEADER.size else (b"",) * 3 + (0,)
        if magic != MAGIC or not 0 < chunk <= 64 * CHUNK:
            raise SealError("not_a_kiosk_database", "this file is not a sealed kiosk backup")
        if tag != _key_tag(key):
            raise SealError("recovery_key_wrong", f"this backup was sealed with recovery key {_tag_name(tag)}, "
                                                  f"not {key_id(key)}")
        cipher = AESGCM(_file_key(key, salt))
        for number in itertools.count():
            block = f.read(chunk + _TAG)
            last = len(block) < chunk + _TAG
            try:
                yield cipher.decrypt(_nonce(number, last), block, header)
            except InvalidTag:
                raise SealError("backup_damaged", "the sealed backup was altered or cut short") from None
            if last:
                break
        if f.read(1):
            raise SealError("backup_damaged", "the sealed backup runs on past its last chunk")


def _file_key(key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"attendance-kiosk sealed backup file").derive(key)


def _nonce(number: int, last: bool) -> bytes:
    return number.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _tag_name(tag: bytes) -> str:
    return tag.hex().upper()[:4] + "-" + tag.hex().upper()[4:]
