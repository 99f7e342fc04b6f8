"""Request signatures: HMAC-SHA256 with the device secret over method, path, body hash,
timestamp and nonce.

Replays are refused by remembering every nonce per device. A kiosk's clock may be off by days, so
the timestamp is only loosely checked: a request more than MAX_SKEW_S from the receiver's clock
(or not a finite number) is refused `bad_timestamp`. MAX_SKEW_S is shorter than the time nonces are
kept (the central server's NONCE_DAYS), so a request old enough for its nonce to be forgotten is
refused for its age. Otherwise the timestamp yields the clock offset recorded at each sync.
"""

import hashlib
import hmac
import math
import secrets
import time

from sync.protocol import SyncError

HEADERS = ("X-Device", "X-Timestamp", "X-Nonce", "X-Signature")
MAX_SKEW_S = 7 * 86400


def new_secret() -> str:
    """A fresh device secret (256 bits, hex)."""
    return secrets.token_hex(32)


def hash_code(code: str) -> str:
    """How one-time enrolment codes are stored: never in clear."""
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_code() -> str:
    """A one-time enrolment code a coordinator can read aloud: 12 base32 characters in 3 groups."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def _message(method: str, path: str, body: bytes, timestamp: str, nonce: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, digest, timestamp, nonce]).encode()


def sign(device: str, secret: str, method: str, path: str, body: bytes, now: float | None = None) -> dict:
    """The four signature headers for one request (a fresh nonce each call)."""
    timestamp = f"{time.time() if now is None else now:.3f}"
    nonce = secrets.token_hex(16)
    mac = hmac.new(bytes.fromhex(secret), _message(method, path, body, timestamp, nonce), hashlib.sha256)
    return {"X-Device": device, "X-Timestamp": timestamp, "X-Nonce": nonce, "X-Signature": mac.hexdigest()}


def verify(headers, method: str, path: str, body: bytes, lookup, remember_nonce) -> tuple[str, float]:
    """Checks a signed request; returns (device id, clock offset in seconds: server − device).

    `lookup(device)` returns (secret, revoked: bool) or None; `remember_nonce(device, nonce)`
    returns False if the nonce was seen before. With `remember_nonce=None` the caller records the
    nonce itself (the central server does so in the transaction that applies the request).
    Raises SyncError with the refusal reason.
    """
    device, timestamp, nonce, signature = (headers.get(h) for h in HEADERS)
    if not (device and timestamp and nonce and signature):
        raise SyncError("unauthenticated", "request is not signed")
    try:
        stamp = float(timestamp)
    except ValueError:
        raise SyncError("unauthenticated", "bad X-Timestamp") from None
    if not math.isfinite(stamp):
        raise SyncError("bad_timestamp", "X-Timestamp is not a finite number")
    found = lookup(device)
    if found is None:
        raise SyncError("unenrolled", f"device {device} is not enrolled here")
    secret, revoked = found
    expected = hmac.new(bytes.fromhex(secret), _message(method, path, body, timestamp, nonce), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature):
        raise SyncError("unauthenticated", "bad signature")
    if revoked:
        raise SyncError("revoked_device", f"device {device} has been revoked")
    offset = time.time() - stamp
    if abs(offset) > MAX_SKEW_S:
        raise SyncError("bad_timestamp", f"X-Timestamp is {offset / 86400:+.1f} days from this server's clock")
    if len(nonce) > 64 or (remember_nonce is not None and not remember_nonce(device, nonce)):
        raise SyncError("replayed", "this request was already received")
    return device, offset
