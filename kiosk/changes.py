"""The one write path for domain tables: every change is logged, then applied, in one transaction.

A local write and a change received by sync go through the same `apply_change`, so a replica's
tables are always what its change log says (`rebuild` proves it). Changes are grouped per
program (partition) and numbered gap-free per (program, origin device).
"""

import json
import threading

from kiosk.clock import HybridClock, iso, now_utc
from kiosk import keys, programkeys
from kiosk.db import device_id, origin_key, transaction
from kiosk.schema import APPEND_ONLY, LEGACY_FIELDS, REFERENCES
from kiosk.validator import ChangeError, check_change, check_first_insert, check_fixed

DERIVED_TABLES = ("attendance",)

_clocks: dict[str, HybridClock] = {}
_signers: dict[str, keys.Signer] = {}
_clocks_lock = threading.Lock()


def clock(db, device: str | None = None) -> HybridClock:
    """The hybrid logical clock of this database's device, started past every stamp it holds."""
    device = device or device_id(db)
    with _clocks_lock:
        if device not in _clocks:
            hlc = HybridClock(device)
            latest = db.execute("select max(hlc) from changes").fetchone()[0]
            if latest:
                hlc.observe(latest)
            _clocks[device] = hlc
        return _clocks[device]


def write(db, program_id: str, entity: str, entity_id: str, fields: dict, op: str = "upsert") -> dict:
    """Records a local change to one domain row and applies it; returns the change."""
    with transaction(db):
        origin = device_id(db)
        hlc = clock(db, origin)
        seq = vector_seq(db, program_id, origin) + 1
        previous = _observe_own_latest(db, hlc, program_id, origin, seq - 1)
        change = {
            "program_id": program_id, "origin": origin, "seq": seq,
            "entity": entity, "id": entity_id, "op": op, "hlc": hlc.tick(),
            "payload": _with_base(db, entity, entity_id, fields),
        }
        validate(change)
        chain = keys.next_chain(previous, change)
        change["sig"] = _signer(db, origin).sign(chain)
        _log_and_apply(db, change, hlc, chain)
    return change


def _observe_own_latest(db, hlc: HybridClock, program_id: str, origin: str, seq: int) -> str | None:
    """Another process (the CLI beside the server) may have written last: stay after its stamp.
    Returns the chain value of our change `seq` (None before the first)."""
    if not seq:
        return None
    row = db.execute("select hlc, chain from changes where program_id = ? and origin = ? and seq = ?",
                     [program_id, origin, seq]).fetchone()
    hlc.observe(row[0])
    return row[1]


def _signer(db, origin: str) -> keys.Signer:
    """This database's signer for its origin; its public key is in `origin_keys` for relaying."""
    signer = _signers.get(origin)
    if signer is None:
        private = origin_key(db, origin)
        if private is None:
            raise ChangeError("bad_signature", f"this database holds no key for its origin {origin}")
        signer = _signers[origin] = keys.Signer(private)
    db.execute("insert or ignore into origin_keys values (?, ?)", [origin, signer.public_key])
    return signer


def own_public_key(db) -> str:
    """This database's current origin's public key (made with its device id)."""
    with transaction(db):
        return _signer(db, device_id(db)).public_key


def remember_keys(db, offered) -> None:
    """Keeps the public keys a batch brings; each must be the key its origin id is derived from."""
    if offered is None:
        return
    if not isinstance(offered, dict):
        raise ChangeError("bad_signature", "keys map origins to public keys")
    for origin, public_key in offered.items():
        if not keys.certifies(origin, public_key):
            raise ChangeError("bad_signature", f"the key offered for {str(origin)[:64]} is not that origin's")
        db.execute("insert or ignore into origin_keys values (?, ?)", [origin, public_key])


def keys_for(db, origins) -> dict[str, str]:
    """The public keys of the given origins, for a batch that relays their changes."""
    wanted = sorted(set(origins))
    if not wanted:
        return {}
    rows = db.execute(f"select origin, public_key from origin_keys where origin in ({', '.join('?' * len(wanted))})",
                      wanted).fetchall()
    return dict(rows)


def _with_base(db, entity: str, entity_id: str, fields: dict) -> dict:
    """Adds the field stamps the writer saw, so a merge can tell an overwrite from a conflict."""
    if entity in APPEND_ONLY:
        return dict(fields)
    clocks = _row_clocks(db, entity, entity_id)
    base = {f: clocks[f][0] for f in fields if f in clocks}
    return {**fields, "_base": base} if base else dict(fields)


def vector_seq(db, program_id: str, origin: str) -> int:
    """The highest contiguous seq applied from an origin in a program, 0 if none."""
    row = db.execute(
        "select seq from vectors where program_id = ? and origin = ?", [program_id, origin]
    ).fetchone()
    return row[0] if row else 0


def vector(db, program_id: str) -> dict[str, int]:
    """This replica's version vector for a program: origin -> highest contiguous seq."""
    rows = db.execute("select origin, seq from vectors where program_id = ?", [program_id])
    return dict(rows.fetchall())


def validate(change: dict, program_id: str | None = None) -> None:
    """Checks a change before it touches the database: `kiosk.validator.check_change`."""
    check_change(change, program_id)


def apply_change(db, change: dict) -> bool:
    """Logs and applies one change in order; False if already applied (a resend is a no-op).

    Must run inside a transaction; raises ChangeError("seq_gap") if an earlier change of the
    same origin is missing.
    """
    validate(change)
    have = vector_seq(db, change["program_id"], change["origin"])
    if change["seq"] <= have:
        return False
    if change["seq"] != have + 1:
        raise ChangeError("seq_gap", f"change {change['seq']} from {change['origin']} follows {have}")
    _check_references(db, change)
    chain = verify_signature(db, change, have)
    _log_and_apply(db, change, clock(db), chain)
    return True


def verify_signature(db, change: dict, have: int) -> str:
    """The change's chain value if its origin signed it (after our change `have` of that origin);
    raises ChangeError("bad_signature") otherwise. A relay cannot invent or alter a change."""
    row = db.execute("select public_key from origin_keys where origin = ?", [change["origin"]]).fetchone()
    if row is None:
        raise ChangeError("bad_signature", f"no public key for origin {change['origin']}")
    previous = None
    if have:
        previous = db.execute("select chain from changes where program_id = ? and origin = ? and seq = ?",
                              [change["program_id"], change["origin"], have]).fetchone()[0]
    chain = keys.next_chain(previous, change)
    if not keys.verify(row[0], chain, change.get("sig")):
        raise ChangeError("bad_signature", f"change {change['seq']} of {change['origin']} is not signed by its origin")
    return chain


def _check_references(db, change: dict) -> None:
    """A received change may name only rows of its own program (a row held here of another
    program is refused, whatever an authenticated device claims)."""
    for field, table in REFERENCES.items():
        value = change["payload"].get(field)
        if isinstance(value, str):
            _check_owner(db, table, value, change["program_id"])


def _check_owner(db, table: str, row_id: str, program_id: str) -> None:
    row = db.execute(f"select program_id from {table} where id = ?", [row_id]).fetchone()
    if row and row[0] != program_id:
        raise ChangeError("wrong_program", f"{table} {row_id} belongs to another program")


def signed_by_origin(db, program_id: str, origin: str, run: list[dict]) -> bool:
    """True if `run` (another replica's changes of `origin`, contiguous from some seq on) is
    signed by that origin, continuing the history we hold before its first change.

    A replica that claims to hold more of our own stream than we do must prove it this way
    before we take ourselves for a restored backup and change our device id.
    """
    run = sorted(run, key=lambda c: c["seq"])
    row = db.execute("select public_key from origin_keys where origin = ?", [origin]).fetchone()
    if not run or row is None or [c["seq"] for c in run] != list(range(run[0]["seq"], run[0]["seq"] + len(run))):
        return False
    previous = None
    if run[0]["seq"] > 1:
        held = db.execute("select chain from changes where program_id = ? and origin = ? and seq = ?",
                          [program_id, origin, run[0]["seq"] - 1]).fetchone()
        if held is None:
            return False
        previous = held[0]
    for change in run:
        if change.get("origin") != origin or change.get("program_id") != program_id:
            return False
        previous = keys.next_chain(previous, change)
        if not keys.verify(row[0], previous, change.get("sig")):
            return False
    return True


def _log_and_apply(db, change: dict, hlc: HybridClock, chain: str) -> None:
    """Appends a validated, signed, in-order change to the log, advances the vector, applies it."""
    db.execute(
        "insert into changes (program_id, origin, seq, entity, entity_id, op, payload, hlc, chain, sig)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [change["program_id"], change["origin"], change["seq"], change["entity"], change["id"],
         change["op"], json.dumps(change["payload"], ensure_ascii=False, separators=(",", ":")),
         change["hlc"], chain, change["sig"]],
    )
    db.execute(
        "insert into vectors (program_id, origin, seq) values (?, ?, ?)"
        " on conflict(program_id, origin) do update set seq = excluded.seq",
        [change["program_id"], change["origin"], change["seq"]],
    )
    hlc.observe(change["hlc"])
    materialize(db, change)


def materialize(db, change: dict) -> None:
    """Applies a logged change to its domain table."""
    entity, entity_id = change["entity"], change["id"]
    if entity in APPEND_ONLY:  # events are never deleted: no tombstone to look for
        _append(db, change)
        return
    if db.execute("select 1 from tombstones where entity = ? and entity_id = ?",
                  [entity, entity_id]).fetchone():
        return
    if change["op"] == "delete":
        _check_delete(db, change)
        db.execute(f"delete from {entity} where id = ?", [entity_id])
        db.execute("insert or replace into tombstones values (?, ?, ?)", [entity, entity_id, change["hlc"]])
        db.execute("delete from row_clocks where entity = ? and entity_id = ?", [entity, entity_id])
        return
    _merge(db, change)


def _check_delete(db, change: dict) -> None:
    """A delete may tombstone only a row of its own program, held here or not yet."""
    _check_owner(db, change["entity"], change["id"], change["program_id"])
    other = db.execute("select 1 from changes where entity = ? and entity_id = ? and program_id != ? limit 1",
                       [change["entity"], change["id"], change["program_id"]]).fetchone()
    if other:
        raise ChangeError("wrong_program", f"{change['entity']} {change['id']} belongs to another program")


def _append(db, change: dict) -> None:
    check_first_insert(change)
    fields = change["payload"]
    columns = ["id", "program_id", *fields]
    inserted = db.execute(
        f"insert into {change['entity']} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
        " on conflict do nothing",
        [change["id"], change["program_id"], *fields.values()],
    ).rowcount
    if not inserted:
        _check_owner(db, change["entity"], change["id"], change["program_id"])
    if inserted and change["entity"] == "scans":
        derive_attendance(db, {"id": change["id"], "program_id": change["program_id"], **fields})


def derive_attendance(db, scan: dict) -> None:
    """Attendance per (participant, session): the earliest successful check-in, once."""
    if scan.get("result") == "checked_in" and scan.get("direction", "in") == "in":
        db.execute(
            "insert into attendance (participant_id, session_id, program_id, first_at, first_scan_id)"
            " values (?, ?, ?, ?, ?) on conflict(participant_id, session_id) do update set"
            " first_at = excluded.first_at, first_scan_id = excluded.first_scan_id"
            " where (excluded.first_at, excluded.first_scan_id) < (attendance.first_at, attendance.first_scan_id)",
            [scan["participant_id"], scan["session_id"], scan["program_id"], scan["at"], scan["id"]],
        )
    elif scan.get("result") == "checked_out":
        db.execute(
            "update attendance set last_out_at = ? where participant_id = ? and session_id = ?"
            " and (last_out_at is null or last_out_at < ?)",
            [scan["at"], scan["participant_id"], scan["session_id"], scan["at"]],
        )


def _row_clocks(db, entity: str, entity_id: str) -> dict:
    row = db.execute("select clocks from row_clocks where entity = ? and entity_id = ?",
                     [entity, entity_id]).fetchone()
    return json.loads(row[0]) if row else {}


def _merge(db, change: dict) -> None:
    """Per-field last-writer-wins by HLC; a concurrent losing value goes to the conflict log."""
    entity, entity_id, stamp = change["entity"], change["id"], change["hlc"]
    payload = dict(change["payload"])
    base = payload.pop("_base", {})
    clocks = _row_clocks(db, entity, entity_id)
    current = _row(db, entity, entity_id)
    if current and current["program_id"] != change["program_id"]:
        raise ChangeError("wrong_program", f"{entity} {entity_id} belongs to another program")
    if not current:
        check_first_insert(change)
    check_fixed(change, current)
    for name in LEGACY_FIELDS.get(entity, ()):
        if name in payload:
            programkeys.adopt_legacy(db, entity_id, payload.pop(name))
    winners = {}
    for field, value in payload.items():
        held_stamp, held_base = clocks.get(field, (None, None))
        if held_stamp is None or stamp > held_stamp:
            if held_stamp and base.get(field) != held_stamp and current.get(field) != value:
                _conflict(db, change, field, kept=(value, stamp), lost=(current.get(field), held_stamp))
            winners[field] = value
            clocks[field] = (stamp, base.get(field))
        elif held_base != stamp and current.get(field) != value:
            _conflict(db, change, field, kept=(current.get(field), held_stamp), lost=(value, stamp))
    if not winners:
        return
    if current:
        db.execute(f"update {entity} set {', '.join(f'{c} = ?' for c in winners)} where id = ?",
                   [*winners.values(), entity_id])
    else:
        columns = ["id", "program_id", *winners]
        db.execute(f"insert into {entity} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                   [entity_id, change["program_id"], *winners.values()])
    db.execute("insert or replace into row_clocks values (?, ?, ?)",
               [entity, entity_id, json.dumps(clocks, separators=(",", ":"))])


def _row(db, table: str, row_id: str) -> dict:
    cursor = db.execute(f"select * from {table} where id = ?", [row_id])
    row = cursor.fetchone()
    return dict(zip([c[0] for c in cursor.description], row)) if row else {}


def _conflict(db, change: dict, field: str, kept: tuple, lost: tuple) -> None:
    lost_origin = change["origin"] if lost[1] == change["hlc"] else lost[1].split("-", 2)[2]
    db.execute(
        "insert into conflicts (entity, entity_id, field, kept_value, kept_hlc, lost_value,"
        " lost_hlc, lost_origin, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [change["entity"], change["id"], field, _text(kept[0]), kept[1], _text(lost[0]), lost[1],
         lost_origin, iso(now_utc())],
    )


def mark_conflict_reviewed(db, conflict_id: int) -> None:
    """A coordinator has looked at a merge conflict (the kept value stays)."""
    db.execute("update conflicts set resolved_at = ? where id = ? and resolved_at is null",
               [iso(now_utc()), conflict_id])


def _text(value) -> str | None:
    return None if value is None else str(value)


def changes_since(db, program_id: str, theirs: dict[str, int], limit: int = 500) -> list[dict]:
    """The changes of a program that a replica with vector `theirs` lacks, in causal (HLC) order."""
    mine = vector(db, program_id)
    wanted = [(o, theirs.get(o, 0)) for o, s in mine.items() if s > theirs.get(o, 0)]
    if not wanted:
        return []
    clauses = " or ".join("(origin = ? and seq > ?)" for _ in wanted)
    rows = db.execute(
        f"select {_COLUMNS} from changes"
        f" where program_id = ? and ({clauses}) order by hlc, origin, seq limit ?",
        [program_id, *[v for pair in wanted for v in pair], limit],
    ).fetchall()
    return [change_from_row(r) for r in rows]


_COLUMNS = "program_id, origin, seq, entity, entity_id, op, payload, hlc, sig"


def change_from_row(row) -> dict:
    """A change-log row (the columns of `_COLUMNS`, in order) as a change dict."""
    program_id, origin, seq, entity, entity_id, op, payload, hlc, sig = row
    return {"program_id": program_id, "origin": origin, "seq": seq, "entity": entity,
            "id": entity_id, "op": op, "payload": json.loads(payload), "hlc": hlc, "sig": sig}


def rebuild(source, target) -> int:
    """Replays every change of `source` into an empty `target`; the domain tables must match."""
    count = 0
    with transaction(target):
        remember_keys(target, dict(source.execute("select origin, public_key from origin_keys").fetchall()))
        for program_id, in source.execute("select distinct program_id from changes").fetchall():
            for change in changes_since(source, program_id, {}, limit=-1):
                count += apply_change(target, change)
    return count


def stored_change(db, program_id: str, origin: str, seq: int) -> dict | None:
    """The change held here under (program, origin, seq), or None."""
    row = db.execute(f"select {_COLUMNS} from changes where program_id = ? and origin = ? and seq = ?",
                     [program_id, origin, seq]).fetchone()
    return change_from_row(row) if row else None


def local_programs(db) -> list[str]:
    """The programs this replica holds: those with rows or with changes in its log."""
    rows = db.execute("select id from programs union select distinct program_id from vectors").fetchall()
    return sorted(r[0] for r in rows)


def take_back(db, program_id: str, origin: str, from_seq: int) -> list[dict]:
    """Removes `origin`'s changes from `from_seq` on from the log (and the vector); returns them.

    Only for adopting another replica's history of an origin (a restored backup): the caller
    re-issues the returned changes under a fresh origin in the same transaction.
    """
    rows = db.execute(f"select {_COLUMNS} from changes where program_id = ? and origin = ? and seq >= ?"
                      " order by seq", [program_id, origin, from_seq]).fetchall()
    db.execute("delete from changes where program_id = ? and origin = ? and seq >= ?",
               [program_id, origin, from_seq])
    if from_seq > 1:
        db.execute("update vectors set seq = ? where program_id = ? and origin = ?",
                   [from_seq - 1, program_id, origin])
    else:
        db.execute("delete from vectors where program_id = ? and origin = ?", [program_id, origin])
    return [change_from_row(r) for r in rows]


def change_count(db) -> int:
    """How many changes the log holds, of every program and origin."""
    return db.execute("select count(*) from changes").fetchone()[0]


def open_conflict_count(db) -> int:
    """Merge conflicts not reviewed yet."""
    return db.execute("select count(*) from conflicts where resolved_at is null").fetchone()[0]


def open_conflicts(db, limit: int = 50) -> list[dict]:
    """Merge conflicts a coordinator has not reviewed yet, newest first, with a label for the row."""
    cursor = db.execute(
        "select c.id, c.entity, c.entity_id, c.field, c.kept_value, c.lost_value, c.lost_origin, c.recorded_at,"
        " coalesce(p.title || p.first_name || ' ' || p.last_name, s.name) as label from conflicts c"
        " left join participants p on c.entity = 'participants' and p.id = c.entity_id"
        " left join sites s on c.entity = 'sites' and s.id = c.entity_id"
        " where c.resolved_at is null order by c.id desc limit ?", [limit])
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
