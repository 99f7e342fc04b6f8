"""Badge codes: short, opaque, signed with the program's key, checked offline.

A code is 20 characters of upper-case base32 (A-Z, 2-7)::

    TTTT BBBBBBBB MMMMMMMM
    tag  body     mac

* tag  - 4 chars (20 bits) of sha256(program_id): says which program issued it;
* body - 8 chars (40 bits) from `secrets`: makes the code unique and unguessable;
* mac  - 8 chars, the first 40 bits of HMAC-SHA256(program key, tag + body).

It never carries personal data. 20 alphanumeric characters fit a version 1 QR
symbol at error correction M, and base32 survives a USB scanner typing on a
Thai keyboard layout as long as the page reads physical keys.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiosk.errors import KioskError

TAG_LEN = 4
BODY_LEN = 8
MAC_LEN = 8
CODE_LEN = TAG_LEN + BODY_LEN + MAC_LEN

REASON_INVALID_CODE = "invalid_code"
REASON_WRONG_PROGRAM = "wrong_program"

_CODE_RE = re.compile(rf"[A-Z2-7]{{{CODE_LEN}}}")
# Separators people (or printed groups) put inside a code; dropped before checking.
_SEPARATORS = re.compile(r"[\s\-]+")
# Anything longer than this is not a mistyped code; don't spend work on it.
_MAX_RAW_LEN = 64


class CodeError(KioskError):
    """A scanned or typed badge code was rejected; `detail` says why (format, signature, tag)."""


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


@functools.lru_cache(maxsize=4096)
def program_tag(program_id: str) -> str:
    """The 4-character tag that starts every code of `program_id` (asked for every program at every scan)."""
    return _b32(hashlib.sha256(program_id.encode("utf-8")).digest()[:5])[:TAG_LEN]


def _mac(key: bytes, tag_and_body: str) -> str:
    digest = hmac.new(key, tag_and_body.encode("ascii"), hashlib.sha256).digest()
    return _b32(digest[:5])


def make_code(program_id: str, key: bytes) -> str:
    """A new random badge code for `program_id`, signed with the program's `key`."""
    if not key:
        raise ValueError("a program key must not be empty")
    tag_and_body = program_tag(program_id) + _b32(secrets.token_bytes(5))
    return tag_and_body + _mac(key, tag_and_body)


# Base32 has no 0 or 1, and the printed code's font makes 0 and O, 1 and I look alike: a person
# typing a badge code by hand gets either right.
_LOOK_ALIKES = str.maketrans("01", "OI")


def normalize_code(raw: str) -> str:
    """`raw` without spaces or dashes, upper-cased, 0 read as O and 1 as I: what a person or a
    scanner typed.

    The result is not checked; `verify_code` does that.
    """
    return _SEPARATORS.sub("", raw).upper().translate(_LOOK_ALIKES)


def _programs_by_tag(
    programs: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
) -> dict[str, list[tuple[str, bytes]]]:
    pairs = programs.items() if isinstance(programs, Mapping) else programs
    by_tag: dict[str, list[tuple[str, bytes]]] = {}
    for program_id, key in pairs:
        by_tag.setdefault(program_tag(program_id), []).append((program_id, key))
    return by_tag


def verify_code(
    code: str, programs: Mapping[str, bytes] | Iterable[tuple[str, bytes]]
) -> str:
    """The id of the program that signed `code`, else raise `CodeError`.

    `programs` maps program_id -> key (a dict, or pairs). `code` is normalized
    first. Reasons: "invalid_code" with detail "format" (not 20 base32
    characters) or "signature" (well-formed but not signed by that program's
    key: forged or mistyped); "wrong_program" (detail "tag") when the code
    belongs to none of `programs`.
    """
    if not isinstance(code, str) or len(code) > _MAX_RAW_LEN:
        raise CodeError(REASON_INVALID_CODE, "not a badge code", detail="format")
    code = normalize_code(code)
    if not _CODE_RE.fullmatch(code):
        raise CodeError(REASON_INVALID_CODE, "not a badge code", detail="format")
    candidates = _programs_by_tag(programs).get(code[:TAG_LEN])
    if not candidates:
        raise CodeError(REASON_WRONG_PROGRAM, "badge of another program", detail="tag")
    tag_and_body, mac = code[: TAG_LEN + BODY_LEN], code[TAG_LEN + BODY_LEN :]
    for program_id, key in candidates:  # more than one only if two tags collide
        if hmac.compare_digest(_mac(key, tag_and_body), mac):
            return program_id
    raise CodeError(REASON_INVALID_CODE, "badge code signature does not match", detail="signature")


# --- signature-sheet rows and certificates -------------------------------------------
# Both are signed with a key derived from the program's key for that purpose alone, so a
# paper-row or certificate code can never pass as a badge code and the other way round.

PAPER_PREFIX = "P"
PAPER_REF_LEN = 8       # the person, as a keyed reference (not their id, not their badge)
PAPER_SESSION_LEN = 4   # the session, likewise
PAPER_MAC_LEN = 8
PAPER_LEN = 1 + TAG_LEN + PAPER_REF_LEN + PAPER_SESSION_LEN + PAPER_MAC_LEN
CERT_PREFIX = "C"
_UUID_B32_LEN = 26
CERT_LEN = 1 + TAG_LEN + _UUID_B32_LEN + MAC_LEN
_PAPER_RE = re.compile(rf"{PAPER_PREFIX}[A-Z2-7]{{{PAPER_LEN - 1}}}")
_CERT_RE = re.compile(rf"{CERT_PREFIX}[A-Z2-7]{{{TAG_LEN + _UUID_B32_LEN + MAC_LEN}}}")


def purpose_key(key: bytes, purpose: str) -> bytes:
    """A key for one purpose only, derived from a program's key."""
    return hmac.new(key, f"attendance-kiosk:{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class PaperRow:
    """The parts of a sheet-row code, not yet checked: program tag, person and session references, MAC."""

    tag: str
    person_ref: str
    session_ref: str
    mac: str


def paper_ref(key: bytes, kind: str, record_id: str) -> str:
    """The short keyed reference a sheet-row code gives a person ("person") or a session ("session")."""
    digest = hmac.new(purpose_key(key, "sheet-row"), f"{kind}:{record_id}".encode(), hashlib.sha256).digest()
    return _b32(digest[:5])[:PAPER_REF_LEN if kind == "person" else PAPER_SESSION_LEN]


def paper_row_code(program_id: str, participant_id: str, session_id: str, key: bytes) -> str:
    """The code in a signature-sheet row's QR: evidence of one person in one session, not a badge.

    'P' + program tag + keyed references to the person and the session + a MAC over the tag and
    both ids (25 characters). It holds no badge code, so nothing cut out of it checks anyone in.
    """
    row = PaperRow(program_tag(program_id), paper_ref(key, "person", participant_id),
                   paper_ref(key, "session", session_id), "")
    return PAPER_PREFIX + row.tag + row.person_ref + row.session_ref + _paper_mac(row, participant_id, session_id, key)


def _paper_mac(row: PaperRow, participant_id: str, session_id: str, key: bytes) -> str:
    text = f"{row.tag}{row.person_ref}{row.session_ref}:{participant_id}:{session_id}"
    return _b32(hmac.new(purpose_key(key, "sheet-row"), text.encode(), hashlib.sha256).digest()[:5])


def split_paper_code(raw: str) -> PaperRow | None:
    """The parts of `raw` when it has the shape of a sheet-row code, else None (nothing checked)."""
    if not isinstance(raw, str) or len(raw) > _MAX_RAW_LEN:
        return None
    code = normalize_code(raw)
    if not _PAPER_RE.fullmatch(code):
        return None
    person_end = 1 + TAG_LEN + PAPER_REF_LEN
    return PaperRow(code[1:1 + TAG_LEN], code[1 + TAG_LEN:person_end],
                    code[person_end:person_end + PAPER_SESSION_LEN], code[-PAPER_MAC_LEN:])


def paper_row_is(row: PaperRow, participant_id: str, session_id: str, key: bytes) -> bool:
    """Whether a sheet-row code was printed for this person and session with this program's key."""
    return hmac.compare_digest(_paper_mac(row, participant_id, session_id, key), row.mac)


def certificate_code(program_id: str, participant_id: str, key: bytes) -> str:
    """The code on a certificate: 'C' + program tag + the participant's id + HMAC (39 characters)."""
    import uuid

    body = program_tag(program_id) + _b32(uuid.UUID(participant_id).bytes)
    return CERT_PREFIX + body + _cert_mac(body, key)


def _cert_mac(body: str, key: bytes) -> str:
    return _b32(hmac.new(purpose_key(key, "certificate"), body.encode(), hashlib.sha256).digest()[:5])


def verify_certificate_code(raw: str, programs: Mapping[str, bytes]) -> tuple[str, str]:
    """(program id, participant id) of a genuine certificate code, else raise CodeError."""
    import uuid

    code = normalize_code(raw) if isinstance(raw, str) and len(raw) <= _MAX_RAW_LEN else ""
    if not _CERT_RE.fullmatch(code):
        raise CodeError(REASON_INVALID_CODE, "not a certificate code", detail="format")
    tag, pid32, mac = code[1:1 + TAG_LEN], code[1 + TAG_LEN:1 + TAG_LEN + _UUID_B32_LEN], code[-MAC_LEN:]
    for program_id, key in programs.items():
        if program_tag(program_id) == tag and hmac.compare_digest(_cert_mac(tag + pid32, key), mac):
            raw_id = base64.b32decode(pid32 + "=" * 6)
            return program_id, str(uuid.UUID(bytes=raw_id))
    raise CodeError(REASON_INVALID_CODE, "certificate code signature does not match", detail="signature")
