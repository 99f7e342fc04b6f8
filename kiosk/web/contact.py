"""Contact stamps: the laptop's own time, signed, handed to a tablet page each time it reaches the
laptop, so that work it keeps while the laptop is unreachable can say when it was made in the
laptop's time (kiosk.people.tablets, "late work").

A stamp names the device it was given to: a registration tablet ("tablet:ID"), a staff login
("login:ID") or an API token's user ("token:ID"); another device's stamp, a forged one or none
carries no time.
"""

from datetime import timedelta

from flask import current_app, session
from itsdangerous import BadSignature, URLSafeSerializer

from kiosk.clock import iso, parse_iso
from kiosk.people.tablets import LateClaim, note_contact
from kiosk.store.db import get_db

MAX_STAMP = 400


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="contact-stamp")


def staff_device(user: dict | None) -> str | None:
    """The device a staff caller is: its login (a browser) or its token's user (a script)."""
    if user is None:
        return None
    return f"login:{session['login']}" if session.get("login") else f"token:{user['id']}"


def stamp(device: str) -> dict:
    """Records a contact of `device` now; the signed stamp of it and the laptop's time."""
    at = iso(note_contact(get_db(), device))
    return {"contact": _signer().dumps([device, at]), "server_time": at}


def late_claim(device: str | None, body: dict, made_field: str) -> LateClaim | None:
    """What a queued item says of when it was made: its stamp (checked: ours, for this device) and
    the time between receiving the stamp and `made_field`, both on the device's own clock. None
    when any of it is missing, forged, foreign or malformed."""
    token, seen, made = body.get("contact"), body.get("contact_seen_at"), body.get(made_field)
    if not (device and isinstance(token, str) and len(token) < MAX_STAMP and isinstance(seen, str)
            and isinstance(made, str)):
        return None
    try:
        owner, at = _signer().loads(token)
        elapsed = parse_iso(made[:40]) - parse_iso(seen[:40])
        contact_at = parse_iso(at)
    except (BadSignature, ValueError, TypeError):
        return None
    if owner != device or abs(elapsed) > timedelta(days=30):
        return None
    return LateClaim(device, contact_at, elapsed)
