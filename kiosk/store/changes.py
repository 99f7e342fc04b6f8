"""The one write path for domain tables: every change is logged, then applied, in one transaction.

A local write and a change received by sync go through the same `apply_change`, so a replica's
tables are always what its change log says (`rebuild` proves it). Changes are grouped per
program (partition) and numbered gap-free per (program, origin device).
"""

import contextlib
import json
import secrets
import threading

from kiosk.clock import HybridClock, iso, now_utc
from kiosk.store.db import device_id, forget_facts, held_facts, origin_key, remembered, transaction, truncate_wal_soon
from kiosk.store.schema import APPEND_ONLY, LEGACY_FIELDS, REFERENCES
from kiosk.store.validator import ChangeError, check_change, check_first_insert, check_fixed
from kiosk.trust import keys, programkeys

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


def write(db, program_id: str, entity: str, entity_id: str, fields: dict, op: str = "upsert", *,
          savepoint: bool = True) -> dict:
    """Records a local change to one domain row and applies it; returns the change.

    Inside a transaction the write is a savepoint of its own, unless the caller says its whole
    transaction is undone when this raises (`savepoint=False`, the door: two statements fewer).
    """
    with transaction(db) if savepoint or not db.conn.in_transaction else contextlib.nullcontext():
        origin = device_id(db)
        hlc = clock(db, origin)
        last, previous = _own_head(db, hlc, program_id, origin)
        seq = last + 1
        change = {
            "program_id": program_id, "origin": origin, "seq": seq,
            "entity": entity, "id": entity_id, "op": op, "hlc": hlc.tick(),
            "payload": _sealable(_with_base(db, entity, entity_id, fields), entity),
        }
        validate(change)
        chain = keys.next_chain(previous, change)
        change["sig"] = _signer(db, origin).sign(chain)
        _log_and_apply(db, change, hlc, chain)
    return change


def _own_head(db, hlc: HybridClock, program_id: str, origin: str) -> tuple[int, str | None]:
    """Our last seq in the program and its chain value (0, None before the first), read once per
    write transaction (`held_facts`). Another process (the CLI beside the server) may have written
    last: the clock stays after its stamp."""
    seq, stamp, chain = remembered(db, ("head", program_id, origin), lambda: _read_head(db, program_id, origin))
    if stamp:
        hlc.observe(stamp)
    return seq, chain


def _read_head(db, program_id: str, origin: str) -> tuple[int, str | None, str | None]:
    """(seq, hlc, chain) of our last change in the program, as the log holds it."""
    row = db.execute("select v.seq, c.hlc, c.chain from vectors v left join changes c on c.program_id = v.program_id"
                     " and c.origin = v.origin and c.seq = v.seq where v.program_id = ? and v.origin = ?",
                     [program_id, origin]).fetchone()
    if row and row[0] and row[1] is None:
        raise ChangeError("seq_gap", f"change {row[0]} of {origin} is counted but not held")
    return row or (0, None, None)


def _signer(db, origin: str) -> keys.Signer:
    """This database's signer for its origin; its public key is in `origin_keys` for relaying
    (written once per transaction)."""
    signer = _signers.get(origin)
    if signer is None:
        private = origin_key(db, origin)
        if private is None:
            raise ChangeError("bad_signature", f"this database holds no key for its origin {origin}")
        signer = _signers[origin] = keys.Signer(private)
    remembered(db, ("origin_key", origin), lambda: _publish_key(db, origin, signer.public_key))
    return signer


def _publish_key(db, origin: str, public_key: str) -> bool:
    db.execute("insert or ignore into origin_keys values (?, ?)", [origin, public_key])
    return True


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


def _sealable(payload: dict, entity: str) -> dict:
    """A payload naming a person gets a fresh salt: its personal values are signed only through
    salted hashes, so an erasure can remove them and keep the signature (kiosk.trust.keys)."""
    if any(field in payload for field in keys.PERSONAL.get(entity, ())):
        return {**payload, "_salt": secrets.token_hex(16)}
    return payload


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
    """Checks a change before it touches the database: `kiosk.store.validator.check_change`."""
    check_change(change, program_id)


def apply_change(db, change: dict) -> bool:
    """Logs and applies one received change (a run of one: its signature is checked); False if
    already held (a resend is a no-op). See `apply_received`."""
    return apply_received(db, change["program_id"], [change]) == 1


def apply_received(db, program_id: str, batch: list[dict]) -> int:
    """Logs and applies another replica's changes of one program, in the order given; returns how
    many were new. Must run inside a transaction (the caller's: all or nothing).

    Each change is validated; one already held must be identical ("origin_mismatch"). The new
    changes of each origin form a run that must follow what we hold without a gap ("seq_gap") and
    be signed by its origin: the chain runs on from our last change of that origin and the
    signature is checked at the run's end and at each checkpoint (`keys.vouching`;
    "bad_signature"). Only the signatures checked are kept, the others are stored as NULL, so an
    unchecked signature received is never handed on. Nothing is applied before every run passes.
    """
    fresh, runs, seen, have = [], {}, {}, {}
    for change in batch:
        validate(change, program_id)
        origin, seq = change["origin"], change["seq"]
        if origin not in have:
            have[origin] = vector_seq(db, program_id, origin)
        if (origin, seq) in seen or seq <= have[origin]:  # a resend: a no-op if it is the same
            held = seen.get((origin, seq)) or stored_change(db, program_id, origin, seq)
            if held is None or not keys.same_change(change, held):
                raise ChangeError("origin_mismatch", f"change {seq} of {origin} differs from the one held here")
            continue
        seen[(origin, seq)] = change
        fresh.append(change)
        runs.setdefault(origin, []).append(change)
    _check_not_revoked(db, program_id, runs)
    checked = {}
    for origin, run in runs.items():
        checked.update(_check_run(db, program_id, origin, have[origin], run))
    hlc = clock(db)
    for change in fresh:
        _check_references(db, change)
        chain, kept = checked[id(change)]
        change = {**change, "payload": _kept_payload(db, change), "sig": change.get("sig") if kept else None}
        _log_and_apply(db, change, hlc, chain)
    return len(fresh)


def _kept_payload(db, change: dict) -> dict:
    """What this replica keeps of a change: about a person erased here, no personal value (an old
    bundle or a kiosk offline since the erasure cannot bring one back)."""
    if change["entity"] in keys.PERSONAL and is_erased(db, change["id"]):
        return keys.erase_values(change["entity"], change["payload"])
    return change["payload"]


def is_erased(db, participant_id: str) -> bool:
    """True if this replica holds an erasure of the person."""
    return db.execute("select 1 from erasures where id = ?", [participant_id]).fetchone() is not None


def _check_not_revoked(db, program_id: str, runs: dict[str, list[dict]]) -> None:
    """No new change of a revoked origin past the last one central accepted ("revoked_origin")."""
    if not runs:
        return
    cutoffs = revoked_cutoffs(db, program_id)
    for origin, run in runs.items():
        if origin in cutoffs and run[-1]["seq"] > cutoffs[origin]:
            raise ChangeError("revoked_origin", f"change {run[-1]['seq']} of {origin} was made after its device "
                                                f"was revoked (the last accepted is {cutoffs[origin]})")


def _check_run(db, program_id: str, origin: str, have: int, run: list[dict]) -> dict[int, tuple[str, bool]]:
    """Checks one origin's new run (after our change `have`): gap-free, signed at its end and at
    its checkpoints. Returns, per change (by id()), its chain value and whether its signature was
    checked (and so is kept)."""
    for expected, change in enumerate(run, have + 1):
        if change["seq"] != expected:
            raise ChangeError("seq_gap", f"change {change['seq']} from {origin} follows {expected - 1}")
    row = db.execute("select public_key from origin_keys where origin = ?", [origin]).fetchone()
    if row is None:
        raise ChangeError("bad_signature", f"no public key for origin {origin}")
    chain, stamp = _head(db, program_id, origin, have)
    out = {}
    for change, check in zip(run, keys.vouching(run)):
        if stamp is not None and change["hlc"] <= stamp:
            raise ChangeError("bad_clock", f"change {change['seq']} of {origin} is stamped before the change it follows")
        chain, stamp = keys.next_chain(chain, change), change["hlc"]
        if check and not keys.verify(row[0], chain, change.get("sig")):
            raise ChangeError("bad_signature", f"change {change['seq']} of {origin} is not signed by its origin")
        out[id(change)] = (chain, check)
    return out


def _head(db, program_id: str, origin: str, seq: int) -> tuple[str | None, str | None]:
    """Our chain value of `origin` after its change `seq`, and that change's stamp (None, None
    before the first). An origin's stamps only increase, so HLC order is its seq order."""
    if not seq:
        return None, None
    row = db.execute("select chain, hlc from changes where program_id = ? and origin = ? and seq = ?",
                     [program_id, origin, seq]).fetchone()
    return (row[0], row[1]) if row else (None, None)


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
    signed by that origin, continuing the history we hold before its first change: the chain
    runs on through it and the origin's signature of its last change is valid (one signature
    vouches for every change before it; a replica keeps only some).

    A replica that claims to hold more of our own stream than we do must prove it this way
    before we take ourselves for a restored backup and change our device id.
    """
    run = sorted(run, key=lambda c: c["seq"])
    row = db.execute("select public_key from origin_keys where origin = ?", [origin]).fetchone()
    if not run or row is None or [c["seq"] for c in run] != list(range(run[0]["seq"], run[0]["seq"] + len(run))):
        return False
    chain, stamp = _head(db, program_id, origin, run[0]["seq"] - 1)
    if run[0]["seq"] > 1 and stamp is None:
        return False
    for change in run:
        if change.get("origin") != origin or change.get("program_id") != program_id:
            return False
        chain = keys.next_chain(chain, change)
    return keys.verify(row[0], chain, run[-1].get("sig"))


def _log_and_apply(db, change: dict, hlc: HybridClock, chain: str) -> None:
    """Appends a validated, signed, in-order change to the log, advances the vector, applies it."""
    db.execute(
        "insert into changes (program_id, origin, seq, entity, entity_id, op, payload, hlc, chain, sig)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [change["program_id"], change["origin"], change["seq"], change["entity"], change["id"],
         change["op"], _payload_text(change["payload"]),
         change["hlc"], chain, change["sig"]],
    )
    db.execute(
        "insert into vectors (program_id, origin, seq) values (?, ?, ?)"
        " on conflict(program_id, origin) do update set seq = excluded.seq",
        [change["program_id"], change["origin"], change["seq"]],
    )
    facts = held_facts(db)
    if facts is not None:
        facts[("head", change["program_id"], change["origin"])] = (change["seq"], change["hlc"], chain)
    hlc.observe(change["hlc"])
    materialize(db, change)


def _payload_text(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


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
    if inserted and change["entity"] == "erasures":
        erase_rows(db, change["id"], change["program_id"], fields.get("erased_at"))


# What an erased person's row keeps of a personal field: names are NOT NULL, the rest is null.
_ERASED_VALUE = {"first_name": "", "last_name": ""}


def erase_rows(db, participant_id: str, program_id: str, erased_at: str | None = None) -> None:
    """Removes every personal value of an erased person held here: their row (`erased_at` set),
    their badges (revoked), the merge conflicts that kept a value of theirs, and every change
    about them in the log (values replaced by the hashes their signatures cover). What stays is
    anonymous: their area, role, cohort, scans and attendance, so that filed totals still add up."""
    _check_owner(db, "participants", participant_id, program_id)
    personal, now = keys.PERSONAL["participants"], iso(now_utc())
    if db.execute("select 1 from participants where id = ?", [participant_id]).fetchone():
        db.execute(f"update participants set {', '.join(f'{f} = ?' for f in personal)}, erased_at = ?"
                   " where id = ?", [*(_ERASED_VALUE.get(f) for f in personal), erased_at or now, participant_id])
    db.execute("update badges set revoked_at = coalesce(revoked_at, ?) where participant_id = ?", [now, participant_id])
    db.execute("delete from conflicts where entity = 'participants' and entity_id = ?", [participant_id])
    rows = db.execute("select program_id, origin, seq, payload from changes where entity = 'participants'"
                      " and entity_id = ?", [participant_id]).fetchall()
    for change_program, origin, seq, payload in rows:
        erased = keys.erase_values("participants", json.loads(payload))
        db.execute("update changes set payload = ? where program_id = ? and origin = ? and seq = ?",
                   [_payload_text(erased), change_program, origin, seq])
    truncate_wal_soon()


def derive_attendance(db, scan: dict) -> None:
    """Attendance per (participant, session): the earliest successful check-in, once.

    A coordinator's undo (result `undone`) cancels every check-in of that person and session made
    before it: attendance is the earliest check-in after the latest undo, whatever order the scans
    arrive in (another device's scan made before the undo may come after it).
    """
    result, key = scan.get("result"), (scan.get("participant_id"), scan.get("session_id"))
    if result == "checked_in" and scan.get("direction", "in") == "in":
        if _undone_since(db, *key, scan["at"]):
            return
        db.execute(
            "insert into attendance (participant_id, session_id, program_id, first_at, first_scan_id)"
            " values (?, ?, ?, ?, ?) on conflict(participant_id, session_id) do update set"
            " first_at = excluded.first_at, first_scan_id = excluded.first_scan_id"
            " where (excluded.first_at, excluded.first_scan_id) < (attendance.first_at, attendance.first_scan_id)",
            [*key, scan["program_id"], scan["at"], scan["id"]],
        )
    elif result == "checked_out":
        db.execute(
            "update attendance set last_out_at = ? where participant_id = ? and session_id = ?"
            " and (last_out_at is null or last_out_at < ?)",
            [scan["at"], *key, scan["at"]],
        )
    elif result == "undone":
        _rederive(db, *key)


def _undone_since(db, participant_id: str, session_id: str, at: str) -> bool:
    return bool(db.execute("select 1 from scans where session_id = ? and participant_id = ? and result = 'undone'"
                           " and at >= ? limit 1", [session_id, participant_id, at]).fetchone())


def _rederive(db, participant_id: str, session_id: str) -> None:
    """A (participant, session)'s attendance again from its scans, after its latest undo."""
    db.execute("delete from attendance where participant_id = ? and session_id = ?", [participant_id, session_id])
    since = ("(select max(at) from scans where session_id = ?2 and participant_id = ?1 and result = 'undone')")
    db.execute(
        "insert into attendance (participant_id, session_id, program_id, first_at, first_scan_id)"
        " select participant_id, session_id, program_id, at, id from scans where session_id = ?2"
        " and participant_id = ?1 and result = 'checked_in' and coalesce(direction, 'in') = 'in'"
        f" and at > {since} order by at, id limit 1", [participant_id, session_id])
    db.execute(
        "update attendance set last_out_at = (select max(at) from scans where session_id = ?2 and participant_id = ?1"
        f" and result = 'checked_out' and at > {since}) where participant_id = ?1 and session_id = ?2",
        [participant_id, session_id])


def _row_clocks(db, entity: str, entity_id: str) -> dict:
    row = db.execute("select clocks from row_clocks where entity = ? and entity_id = ?",
                     [entity, entity_id]).fetchone()
    return json.loads(row[0]) if row else {}


def _merge(db, change: dict) -> None:
    """Per-field last-writer-wins by HLC; a concurrent losing value goes to the conflict log."""
    entity, entity_id, stamp = change["entity"], change["id"], change["hlc"]
    payload = dict(change["payload"])
    base = payload.pop("_base", {})
    payload.pop("_salt", None)
    payload.update({field: _ERASED_VALUE.get(field) for field in payload.pop("_erased", {})})
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

    if "key_check" in winners and entity == "programs":
        # a key kept before the row said which key is the program's (offered by a peer, or a
        # legacy `signing_key` in a change stamped before the row was made) goes if it is not that one
        programkeys.drop_wrong(db, entity_id)


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
    """The changes of a program that a replica with vector `theirs` lacks, in causal (HLC) order;
    never a change of a revoked origin past its cutoff (`sendable`)."""
    mine = sendable(db, program_id)
    wanted = [(o, theirs.get(o, 0), s) for o, s in mine.items() if s > theirs.get(o, 0)]
    if not wanted:
        return []
    clauses = " or ".join("(origin = ? and seq > ? and seq <= ?)" for _ in wanted)
    rows = db.execute(
        f"select {_COLUMNS} from changes"
        f" where program_id = ? and ({clauses}) order by hlc, origin, seq limit ?",
        [program_id, *[v for triple in wanted for v in triple], limit],
    ).fetchall()
    return [change_from_row(r) for r in rows]


def sendable(db, program_id: str) -> dict[str, int]:
    """Per origin, the last change of a program this replica hands on: all it holds, except for
    a revoked origin, whose changes stop at its cutoff - at the last one held there with its
    signature, so that every batch still ends on a signed change (central holds the rest)."""
    mine = vector(db, program_id)
    for origin, cutoff in revoked_cutoffs(db, program_id).items():
        if mine.get(origin, 0) > cutoff:
            row = db.execute("select max(seq) from changes where program_id = ? and origin = ? and seq <= ?"
                             " and sig is not null", [program_id, origin, cutoff]).fetchone()
            mine[origin] = row[0] or 0
    return mine


# --- revocations (sync.revocations): the SQL of the table they are kept in ---------------------------

def revoked_cutoffs(db, program_id: str) -> dict[str, int]:
    """Per revoked origin, the last change of the program central accepted from it (0: none)."""
    return {origin: json.loads(through).get(program_id, 0)
            for origin, through in db.execute("select origin, through from revoked_origins")}


def revocation_held(db, origin: str) -> bool:
    return db.execute("select 1 from revoked_origins where origin = ?", [origin]).fetchone() is not None


def keep_revocation(db, origin: str, through: dict[str, int], entry: str) -> None:
    """Keeps a checked revocation (the first one of an origin stays)."""
    db.execute("insert or ignore into revoked_origins values (?, ?, ?)",
               [origin, json.dumps(through, separators=(",", ":")), entry])


def revoked_origin_ids(db) -> list[str]:
    return [r[0] for r in db.execute("select origin from revoked_origins order by origin")]


def revocation_entries(db) -> list[str]:
    """The signed statements held, as JSON text."""
    return [r[0] for r in db.execute("select entry from revoked_origins order by origin")]


def batch_since(db, program_id: str, theirs: dict[str, int], limit: int = 500) -> tuple[list[dict], bool]:
    """The next batch for a replica with vector `theirs`, and whether more wait: at most `limit`
    changes in causal order, cut where each origin's run ends at a change whose signature is held
    here (`keys.signed_cut`: shorter, or on to the next signed change, up to CUT_REACH)."""
    found = changes_since(db, program_id, theirs, limit + 1)
    cut = keys.signed_cut(found, limit)
    if not cut and len(found) > limit:
        found = changes_since(db, program_id, theirs, max(limit, keys.CUT_REACH) + 1)
        cut = keys.signed_cut(found[:max(limit, keys.CUT_REACH)], limit)
    if found and not cut:
        raise ChangeError("bad_signature", f"no signed change to end a batch at within {keys.CUT_REACH} changes")
    return found[:cut], len(found) > cut


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
            count += apply_received(target, program_id, changes_since(source, program_id, {}, limit=-1))
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
    forget_facts(db)
    db.execute("delete from changes where program_id = ? and origin = ? and seq >= ?",
               [program_id, origin, from_seq])
    if from_seq > 1:
        db.execute("update vectors set seq = ? where program_id = ? and origin = ?",
                   [from_seq - 1, program_id, origin])
    else:
        db.execute("delete from vectors where program_id = ? and origin = ?", [program_id, origin])
    return [change_from_row(r) for r in rows]


def heads_about(db, program_id: str, participant_id: str) -> dict[str, int]:
    """Per origin, the last seq of its changes about one person: a replica holds every change about
    them once its vector reaches these."""
    return dict(db.execute("select origin, max(seq) from changes where entity = 'participants' and entity_id = ?"
                           " and program_id = ? group by origin", [participant_id, program_id]).fetchall())


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
