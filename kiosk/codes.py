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
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping

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


def program_tag(program_id: str) -> str:
    """The 4-character tag that starts every code of `program_id`."""
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


def normalize_code(raw: str) -> str:
    """`raw` without spaces or dashes, upper-cased: what a person or a scanner typed.

    The result is not checked; `verify_code` does that.
    """
    return _SEPARATORS.sub("", raw).upper()


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
