"""The one validator of changes: every change is checked with it before it is applied, on a kiosk
(local writes, peer pushes, pulls, USB bundles) and on the central server.

It checks what a change says about itself, with no database: the entity and its fields against
the registry in `kiosk.store.schema` (kinds, lengths), the change's program (a `programs` change only
for its own id, every change of a batch in the batch's program), and its hybrid-logical-clock
stamp (exact format, the change's own origin, not far ahead of the receiver's clock). What needs
the replica's rows (a first insert's required fields, the row's program) is checked where the
rows are: `kiosk.store.changes` on a kiosk, `sync.central.storage` on the central server, with
`check_first_insert` and `REFERENCES`.
"""

import re
import time
from datetime import date

from kiosk.errors import KioskError
from kiosk.store.schema import (
    APPEND_ONLY,
    DEFAULT_RULE,
    ENTITIES,
    FIELD_RULES,
    FIXED_FIELDS,
    LEGACY_FIELDS,
    REQUIRED,
)
from kiosk.trust import keys, programkeys

HLC = re.compile(r"(\d{13})-(\d{5})-([0-9A-Za-z][0-9A-Za-z._:-]{0,63})")
ROW_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")
# A kiosk's clock may be off by a day (a wrong time zone); a stamp further ahead than this would
# win every later edit until that date comes, so it is refused.
MAX_AHEAD_MS = 2 * 86400 * 1000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_BADGE = re.compile(r"[A-Z2-7]{1,64}")
_HEX = re.compile(r"[0-9a-f]+")


class ChangeError(KioskError):
    """A change that cannot be applied."""


def check_change(change, program_id: str | None = None, now_ms: int | None = None) -> None:
    """Refuses (ChangeError with a stable reason) a change that is malformed, outside `program_id`,
    or stamped in a bad or far-future clock; returns None for a good one."""
    if not isinstance(change, dict):
        raise ChangeError("bad_change", "a change is an object")
    _check_envelope(change)
    if program_id is not None and change["program_id"] != program_id:
        raise ChangeError("wrong_program", f"change of program {change['program_id']!r} in a batch of {program_id!r}")
    if change["entity"] == "programs" and change["id"] != change["program_id"]:
        raise ChangeError("wrong_program", "a program's change may only be about that program itself")
    check_stamp(change["hlc"], change["origin"], now_ms)
    _check_payload(change)
    check = change["payload"].get("key_check") if change["entity"] == "programs" else None
    if check is not None and not programkeys.id_commits(change["id"], check):
        raise ChangeError("bad_field", "a program's key check is the one its id carries", field="key_check")


def _check_envelope(change: dict) -> None:
    if change.get("entity") not in ENTITIES:
        raise ChangeError("unknown_entity", f"unknown entity {change.get('entity')!r}")
    if change.get("op") not in ("upsert", "delete"):
        raise ChangeError("bad_change", f"unknown op {change.get('op')!r}")
    if change["op"] == "delete" and change["entity"] in APPEND_ONLY:
        raise ChangeError("bad_change", f"{change['entity']} are events and are never deleted")
    for key in ("program_id", "origin", "id"):
        if not isinstance(change.get(key), str) or not ROW_ID.fullmatch(change[key]):
            raise ChangeError("bad_change", f"change needs an id-like text {key}")
    if not isinstance(change.get("hlc"), str):
        raise ChangeError("bad_clock", "change needs a text hlc")
    seq = change.get("seq")
    if type(seq) is not int or not 1 <= seq < 2 ** 62:
        raise ChangeError("bad_change", "seq must be a positive integer")
    if not isinstance(change.get("payload"), dict):
        raise ChangeError("bad_change", "payload must be an object")


def check_stamp(stamp, origin: str, now_ms: int | None = None) -> None:
    """An HLC stamp `physical-counter-origin` in its exact format, of `origin`, not far ahead."""
    found = HLC.fullmatch(stamp) if isinstance(stamp, str) else None
    if not found:
        raise ChangeError("bad_clock", f"malformed clock stamp {str(stamp)[:80]!r}")
    if found.group(3) != origin:
        raise ChangeError("bad_clock", "the clock stamp names another device than the change's origin")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if int(found.group(1)) > now_ms + MAX_AHEAD_MS:
        raise ChangeError("clock_ahead", f"stamp {stamp[:13]} is more than two days ahead of this computer's clock")


def _check_payload(change: dict) -> None:
    entity, payload = change["entity"], change["payload"]
    allowed, rules = ENTITIES[entity], FIELD_RULES.get(entity, {})
    legacy = LEGACY_FIELDS.get(entity, {})
    for name, value in payload.items():
        if name == "_base":
            _check_base(value, allowed)
            continue
        if name in ("_salt", "_erased"):
            _check_sealing(entity, name, value)
            continue
        if name in legacy:
            rules = {**rules, **legacy}
        elif name not in allowed:
            raise ChangeError("unknown_field", f"unknown field {name!r} for {entity}", field=name)
        if value is None:
            continue
        if not _fits(value, *rules.get(name, DEFAULT_RULE)):
            raise ChangeError("bad_field", f"{entity}.{name} does not take {str(value)[:40]!r}", field=name)


def _check_base(base, allowed) -> None:
    """`_base` maps a field to the stamp its writer saw (any origin's)."""
    if not isinstance(base, dict):
        raise ChangeError("bad_change", "_base must be an object")
    for name, stamp in base.items():
        if name not in allowed or not isinstance(stamp, str) or not HLC.fullmatch(stamp):
            raise ChangeError("bad_change", f"bad _base entry for {str(name)[:40]!r}")


_SALT = re.compile(r"[0-9a-f]{32}")
_HASHED = re.compile(r"#[0-9a-f]{64}")


def _check_sealing(entity: str, name: str, value) -> None:
    """`_salt` (32 hex digits) and `_erased` (personal field -> its '#' hash) only where an entity
    has personal fields (kiosk.trust.keys.PERSONAL)."""
    personal = keys.PERSONAL.get(entity, ())
    if not personal:
        raise ChangeError("unknown_field", f"{entity} carries no personal values to seal", field=name)
    if name == "_salt" and not (isinstance(value, str) and _SALT.fullmatch(value)):
        raise ChangeError("bad_change", "_salt must be 32 hex digits")
    if name == "_erased" and not (isinstance(value, dict) and all(
            field in personal and isinstance(h, str) and _HASHED.fullmatch(h) for field, h in value.items())):
        raise ChangeError("bad_change", "_erased maps personal fields to their hashes")


def _fits(value, kind: str, limit: int) -> bool:
    if kind == "int":
        return type(value) is int and 0 <= value <= limit
    if kind == "real":
        return type(value) in (int, float) and 0 <= value <= limit  # NaN and infinity fail the bounds
    if not isinstance(value, str):
        return False
    if kind == "text":
        return len(value) <= limit
    if kind == "json":
        return len(value) <= limit
    if kind == "ref":
        return bool(ROW_ID.fullmatch(value))
    if kind == "date":
        return bool(_DATE.fullmatch(value)) and _real_date(value)
    if kind == "hex":
        return len(value) == limit and bool(_HEX.fullmatch(value))
    pattern = {"time": _TIME, "stamp": _STAMP, "code": _CODE, "badge": _BADGE}[kind]
    return len(value) <= max(limit, 40) and bool(pattern.fullmatch(value))


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_fixed(change: dict, held: dict | None) -> None:
    """A field set once (FIXED_FIELDS) is never altered by a later change of the row held."""
    for name in FIXED_FIELDS.get(change["entity"], ()):
        value = change["payload"].get(name)
        if held and held.get(name) is not None and name in change["payload"] and value != held[name]:
            raise ChangeError("bad_field", f"{change['entity']}.{name} is set once and never changes", field=name)


def check_first_insert(change: dict) -> None:
    """A row's first insert carries every field its table requires (a partial one is refused)."""
    if change["op"] != "upsert":
        return
    erased = change["payload"].get("_erased", {})  # a value erased was there: the signature covers its hash
    missing = [f for f in REQUIRED.get(change["entity"], ()) if change["payload"].get(f) is None and f not in erased]
    if missing:
        raise ChangeError("missing_field", f"a new {change['entity']} row needs {', '.join(missing)}",
                          field=missing[0])
