"""The central server's change log: every device's changes per program, pushed whole or not at all,
pulled in HLC order, and the server's own changes."""

import json

from sqlalchemy import and_, func, or_, select, update

from kiosk.clock import iso, now_utc
from kiosk.store.changes import ChangeError, validate
from kiosk.store.schema import APPEND_ONLY, FIXED_FIELDS, LEGACY_FIELDS, REFERENCES
from kiosk.store.validator import check_first_insert
from kiosk.trust import keys
from sync import revocations
from sync.central.storage.tables import READ_TABLES, changes, devices, origin_keys, owners, vectors
from sync.central.storage.tables import dump as _dump
from sync.protocol import SyncError, same_change


class ChangeLog:
    """Pushes and pulls of changes (a part of Storage)."""

    def vector(self, program_id: str, conn=None) -> dict[str, int]:
        """The central replica's version vector for a program."""
        query = select(vectors.c.origin, vectors.c.seq).where(vectors.c.program_id == program_id)
        if conn is not None:
            return dict(conn.execute(query).all())
        with self.engine.connect() as own:
            return dict(own.execute(query).all())

    def programs(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(vectors.c.program_id).distinct())]

    def push(self, program_id: str, batch: list[dict], pusher: str | None = None,
             source: str | None = None, offset: float | None = None,
             nonce: str | None = None, keys: dict | None = None) -> dict[str, int]:
        """Applies a batch whole, in one transaction with its vector advance; returns the new vector.

        Changes already held are skipped if identical and refused ("origin_mismatch") if not; a
        change past the next expected seq of its origin refuses the batch ("seq_gap"). With a
        `nonce` (a signed request of `pusher`), the same transaction stores the nonce (a replay is
        refused) and checks the device is neither revoked nor outside its programs; a refused
        batch still leaves its nonce stored. `keys` are the public keys of the batch's origins.
        """
        try:
            self._check_changes(program_id, batch, pusher)
            return self._retrying(lambda conn: self._apply(conn, program_id, batch, pusher, source, offset,
                                                           nonce, keys))
        except SyncError as exc:
            if nonce is not None and exc.reason != "replayed" and not self.remember_nonce(pusher, nonce):
                raise SyncError("replayed", "this request was already received") from None
            raise

    def _check_changes(self, program_id: str, batch: list[dict], pusher: str | None) -> None:
        for change in batch:
            try:
                validate(change, program_id)
            except ChangeError as exc:
                raise SyncError(exc.reason, str(exc)) from None
            if change["origin"] == self.server_id and pusher is not None:
                raise SyncError("origin_mismatch", "a device cannot send changes in the server's name")

    def push_many(self, batches: list[tuple[str, list[dict]]], source: str, keys: dict | None = None) -> int:
        """Applies several batches (a USB bundle) in one transaction: all or nothing, but for the
        changes of revoked origins past their cutoff, which are left out; returns how many were."""
        for program_id, batch in batches:
            self._check_changes(program_id, batch, None)

        def work(conn):
            refused = 0
            for program_id, batch in batches:
                cutoffs = self._revoked_cutoffs(conn, program_id, (c["origin"] for c in batch))
                kept, dropped = revocations.hold_back(batch, cutoffs)
                refused += dropped
                self._apply(conn, program_id, kept, None, source, None, keys=keys)
            return refused
        return self._retrying(work)

    def _apply(self, conn, program_id, batch, pusher, source, offset, nonce=None, keys=None) -> dict[str, int]:
        if nonce is not None:
            self._take_nonce(conn, pusher, nonce)
        if pusher:
            self._check_device(conn, pusher, program_id)
        by_origin: dict[str, list[dict]] = {}
        for change in batch:
            by_origin.setdefault(change["origin"], []).append(change)
        have = {r[0]: (r[1], r[2]) for r in conn.execute(
            select(vectors.c.origin, vectors.c.seq, vectors.c.chain).where(
                vectors.c.program_id == program_id, vectors.c.origin.in_(list(by_origin)))
            .with_for_update())}
        fresh, held, runs = [], [], {}
        for origin, group in by_origin.items():
            group.sort(key=_seq)
            new, old = _split_origin(origin, group, have.get(origin, (0, None))[0])
            fresh += new
            held += old
            if new:
                runs[origin] = new
        self._check_held(conn, program_id, held)
        if fresh:
            self._check_not_revoked(conn, program_id, runs)
            heads = self._check_signatures(conn, program_id, runs, have, keys)
            self._check_rows(conn, program_id, fresh)
            self._store(conn, program_id, fresh, pusher, source, offset, heads)
        if pusher:
            now = iso(now_utc())
            conn.execute(update(devices).where(devices.c.id == pusher).values(
                last_seen_at=now, last_sync_at=now, pushed=devices.c.pushed + len(batch),
                **({"clock_offset_s": round(offset, 3)} if offset is not None else {})))
        return self.vector(program_id, conn)

    def _check_not_revoked(self, conn, program_id: str, runs: dict[str, list[dict]]) -> None:
        """No new change of a revoked origin past the last one accepted before its revocation."""
        for origin, cutoff in self._revoked_cutoffs(conn, program_id, runs).items():
            if runs[origin][-1]["seq"] > cutoff:
                raise SyncError("revoked_origin", f"changes of {origin} made after its device was revoked")

    def _check_signatures(self, conn, program_id: str, runs: dict[str, list[dict]], have: dict, offered) -> dict[str, str]:
        """Every new run of an origin is signed by that origin; returns each origin's new chain head.

        The chain makes one signature vouch for every change before it, so each run is checked at
        its end and at its checkpoints (`keys.vouching`), whoever pushed it; only those signatures
        are stored (`_store`), the others are dropped, so a signature nobody checked is never
        handed on to the kiosks. An origin's stamps only increase ("bad_clock"): HLC order, in
        which batches are pulled and cut, is then each origin's seq order.
        """
        known = self._origin_keys(conn, list(runs), offered)
        stamps = self._head_stamps(conn, program_id, {o: have[o][0] for o in runs if o in have})
        heads = {}
        for origin, run in runs.items():
            public_key = known.get(origin)
            if public_key is None:
                raise SyncError("bad_signature", f"no public key for origin {origin}")
            chain, stamp = have.get(origin, (0, None))[1], stamps.get(origin)
            for change, check in zip(run, keys.vouching(run)):
                if stamp is not None and change["hlc"] <= stamp:
                    raise SyncError("bad_clock", f"change {change['seq']} of {origin} is stamped before the one it follows")
                text = change["_text"] = _dump(change["payload"])  # stored as is by _store
                chain, stamp = keys.next_chain(chain, change, text), change["hlc"]
                if check and not keys.verify(public_key, chain, change.get("sig")):
                    raise SyncError("bad_signature", f"change {change['seq']} of {origin} is not signed by its origin")
                change["_sig"] = change.get("sig") if check else None
            heads[origin] = chain
        return heads

    def _head_stamps(self, conn, program_id: str, tops: dict[str, int]) -> dict[str, str]:
        """The stamps of the changes held at `tops` (origin -> seq), in one keyed read."""
        tops = {o: s for o, s in tops.items() if s}
        if not tops:
            return {}
        rows = conn.execute(select(changes.c.origin, changes.c.hlc).where(
            changes.c.program_id == program_id,
            or_(*[and_(changes.c.origin == o, changes.c.seq == s) for o, s in sorted(tops.items())])))
        return dict(rows.all())

    def _origin_keys(self, conn, origins: list[str], offered) -> dict[str, str]:
        """The public keys of `origins`: those held, and those offered (each proven by its origin id)."""
        known = dict(conn.execute(select(origin_keys.c.origin, origin_keys.c.public_key)
                                  .where(origin_keys.c.origin.in_(origins))).all())
        new = []
        for origin in origins:
            offer = (offered or {}).get(origin)
            if origin not in known and offer is not None:
                if not keys.certifies(origin, offer):
                    raise SyncError("bad_signature", f"the key offered for {origin} is not that origin's")
                known[origin] = offer
                new.append({"origin": origin, "public_key": offer})
        self._executemany(conn, "origin_keys", lambda: self.insert(origin_keys).on_conflict_do_nothing(
            index_elements=["origin"]), new)
        return known

    def keys_for(self, origins) -> dict[str, str]:
        """The public keys of the given origins, for a pull or a bundle that carries their changes."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(origin_keys.c.origin, origin_keys.c.public_key)
                                     .where(origin_keys.c.origin.in_(sorted(set(origins))))).all())

    def _check_rows(self, conn, program_id: str, fresh: list[dict]) -> None:
        """New changes write and name only rows of their program, and a row's first insert is whole.

        One keyed read of `owners` for the batch's row ids and the ids it names, one insert of
        the rows it creates.
        """
        ids = {c["id"] for c in fresh if c["entity"] not in APPEND_ONLY}
        named = {v for c in fresh for f in REFERENCES if isinstance(v := c["payload"].get(f), str)}
        known = dict(conn.execute(select(owners.c.entity_id, owners.c.program_id)
                                  .where(self.among(owners.c.entity_id, sorted(ids | named)))).all())
        stranger = next((i for i, p in known.items() if p != program_id), None)
        if stranger:
            raise SyncError("wrong_program", f"row {stranger} belongs to another program")
        first: dict[str, dict] = {}  # a new row's earliest change (a batch is grouped by origin)
        for change in fresh:
            if change["entity"] in APPEND_ONLY:
                _check_whole(change)
            elif change["id"] not in known and (change["id"] not in first
                                                 or change["hlc"] < first[change["id"]]["hlc"]):
                first[change["id"]] = change
        for change in first.values():
            _check_whole(change)
        self._check_fixed(conn, program_id, fresh)
        created = [{"entity_id": i, "program_id": program_id} for i in sorted(first)]
        self._executemany(conn, "owners", lambda: self.insert(owners).on_conflict_do_nothing(
            index_elements=["entity_id"]), created)

    def _check_fixed(self, conn, program_id: str, fresh: list[dict]) -> None:
        """A field set once (a program's `key_check`, or the legacy `signing_key` of a program made
        before keys left the log) is never altered, by any device; nor is a `key_check` given to
        a row held here without one (a program made before: a device would re-point it to a key
        of its own, and the kiosks would drop the genuine one)."""
        seen: dict[tuple, object] = {}
        for change in fresh:
            entity = change["entity"]
            for name in (*FIXED_FIELDS.get(entity, ()), *LEGACY_FIELDS.get(entity, ())):
                if name not in change["payload"]:
                    continue
                key = (entity, change["id"], name)
                if key not in seen:
                    seen[key] = self._held_fixed(conn, program_id, key, change["payload"][name])
                if seen[key] != change["payload"][name]:
                    raise SyncError("bad_field", f"{entity}.{name} is set once and never changes")

    def _held_fixed(self, conn, program_id: str, key: tuple, offered):
        """The value held of a fixed field, or the one offered if the row may still take it."""
        entity, entity_id, name = key
        table = READ_TABLES[entity]
        row = conn.execute(select(table.c[name], table.c.clocks).where(
            table.c.program_id == program_id, table.c.id == entity_id)).first()
        if row is not None and row[0] is not None:
            return row[0]
        row_held = row is not None and row[1] != "{}"
        return None if row_held and name in FIXED_FIELDS.get(entity, ()) else offered

    def _check_held(self, conn, program_id: str, held: list[dict]) -> None:
        """Changes we already hold must match: nobody rewrites an origin's history.

        One range query per origin loads the stored rows of the batch's (origin, seq) span.
        """
        if not held:
            return
        spans: dict[str, list[int]] = {}
        for change in held:
            span = spans.setdefault(change["origin"], [change["seq"], change["seq"]])
            span[0], span[1] = min(span[0], change["seq"]), max(span[1], change["seq"])
        stored = {}
        for origin, (low, high) in spans.items():
            rows = conn.execute(select(changes).where(
                changes.c.program_id == program_id, changes.c.origin == origin,
                changes.c.seq >= low, changes.c.seq <= high)).mappings()
            stored.update({(r["origin"], r["seq"]): r for r in rows})
        for change in held:
            row = stored.get((change["origin"], change["seq"]))
            if row is None or not _same_as_row(change, row):
                raise SyncError("origin_mismatch",
                                f"change {change['seq']} of {change['origin']} differs from the one already received")

    def _store(self, conn, program_id, fresh, pusher, source, offset, heads: dict[str, str]) -> None:
        now = iso(now_utc())
        fresh, erased = self._keep_erased(conn, program_id, fresh)  # an erased person's values are never stored
        sender = source or pusher
        self._executemany(conn, "changes", changes.insert, [
            {"program_id": program_id, "origin": c["origin"], "seq": c["seq"], "entity": c["entity"],
             "entity_id": c["id"], "op": c["op"], "payload": c.get("_text") or _dump(c["payload"]),
             "hlc": c["hlc"], "received_at": now, "received_from": sender, "sig": c.get("_sig", c["sig"])}
            for c in fresh])
        tops: dict[str, int] = {}
        for c in fresh:
            tops[c["origin"]] = max(tops.get(c["origin"], 0), c["seq"])

        def vector_upsert():
            stmt = self.insert(vectors)
            return stmt.on_conflict_do_update(index_elements=["program_id", "origin"],
                                              set_={"seq": stmt.excluded.seq, "chain": stmt.excluded.chain},
                                              where=stmt.excluded.seq > vectors.c.seq)
        self._executemany(conn, "vectors", vector_upsert,
                          [{"program_id": program_id, "origin": o, "seq": s, "chain": heads[o]}
                           for o, s in sorted(tops.items())])
        own = self._origins_of(conn, pusher) if pusher else set()
        self._materialize(conn, program_id, fresh, pusher or source, own, offset)
        self._apply_erasures(conn, program_id, fresh, erased)

    def pull(self, program_id: str, theirs: dict[str, int], limit: int = 500) -> tuple[list[dict], bool]:
        """The changes a replica with vector `theirs` lacks, in HLC (causal) order; and whether more wait.

        At most `limit`, cut where each origin's run ends at a change whose signature is stored
        (`keys.signed_cut`): shorter, or on to the next signed change (up to CUT_REACH)."""
        mine = self.vector(program_id)
        wanted = [(o, theirs.get(o, 0)) for o, s in mine.items() if s > theirs.get(o, 0)]
        if not wanted:
            return [], False
        clause = or_(*[and_(changes.c.origin == o, changes.c.seq > s) for o, s in wanted])
        query = (select(changes).where(changes.c.program_id == program_id, clause)
                 .order_by(changes.c.hlc, changes.c.origin, changes.c.seq))
        with self.engine.connect() as conn:
            rows = [_change_from_row(r) for r in conn.execute(query.limit(limit + 1)).mappings()]
            cut = keys.signed_cut(rows, limit)
            if not cut and len(rows) > limit:  # no signed change to end at: run on to the next one
                reach = max(limit, keys.CUT_REACH)
                rows = [_change_from_row(r) for r in conn.execute(query.limit(reach + 1)).mappings()]
                cut = keys.signed_cut(rows[:reach], limit)
        if rows and not cut:
            raise SyncError("bad_signature", f"no signed change to end a batch at within {keys.CUT_REACH} changes")
        return rows[:cut], len(rows) > cut

    def originate(self, program_id: str, entity: str, entity_id: str, fields_: dict, op: str = "upsert") -> dict:
        """Writes a change in the central server's own name (roster updates made centrally)."""
        def work(conn):
            head = conn.execute(select(vectors.c.seq, vectors.c.chain).where(
                vectors.c.program_id == program_id, vectors.c.origin == self.server_id).with_for_update()).first()
            seq, previous = (head[0] + 1, head[1]) if head else (1, None)
            latest = conn.execute(select(func.max(changes.c.hlc)).where(changes.c.program_id == program_id)).scalar()
            with self._clock_lock:
                if latest:
                    self._clock.observe(latest)
                stamp = self._clock.tick()
            base = self._field_stamps(conn, program_id, entity, entity_id, fields_)
            payload = {**fields_, "_base": base} if base and entity != "scans" else dict(fields_)
            change = {"program_id": program_id, "origin": self.server_id, "seq": seq, "entity": entity,
                      "id": entity_id, "op": op, "payload": payload, "hlc": stamp}
            validate(change)
            chain = keys.next_chain(previous, change)
            change["sig"] = self.signer.sign(chain)
            self._store(conn, program_id, [change], None, "central", None, {self.server_id: chain})
            return change
        return self._retrying(work)

    def _field_stamps(self, conn, program_id: str, entity: str, entity_id: str, names) -> dict[str, str]:
        """The stamps central holds of these fields of a row: the `_base` of its own change."""
        table = READ_TABLES.get(entity)
        if table is None:
            return {}
        clocks = conn.execute(select(table.c.clocks).where(table.c.program_id == program_id,
                                                           table.c.id == entity_id)).scalar()
        held = json.loads(clocks) if clocks else {}
        return {name: held[name] for name in names if name in held}

    def change_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(changes)).scalar_one()


def _check_whole(change: dict) -> None:
    try:
        check_first_insert(change)
    except ChangeError as exc:
        raise SyncError(exc.reason, str(exc)) from None


def _split_origin(origin: str, group: list[dict], have: int) -> tuple[list[dict], list[dict]]:
    """One origin's changes of a batch cut into new ones (gap-free after `have`) and held ones."""
    new, held, expected = [], [], have + 1
    for change in group:
        if change["seq"] <= have:
            held.append(change)
        elif change["seq"] == expected:
            new.append(change)
            expected += 1
        elif change["seq"] < expected:
            if not same_change(change, new[change["seq"] - have - 1]):
                raise SyncError("origin_mismatch", f"two different changes {change['seq']} of {origin}")
        else:
            raise SyncError("seq_gap", f"change {change['seq']} from {origin} follows {expected - 1}")
    return new, held


def _seq(change: dict) -> int:
    return change["seq"]


def _same_as_row(change: dict, row) -> bool:
    """A change equals the stored row: compared as canonical text first, parsed only if it differs
    (a change about a person erased here is held with the hashes of their values: `same_change`)."""
    if (change["entity"], change["id"], change["op"], change["hlc"]) != (
            row["entity"], row["entity_id"], row["op"], row["hlc"]):
        return False
    return _dump(change["payload"]) == row["payload"] or same_change(change, _change_from_row(row))


def _change_from_row(row) -> dict:
    return {"program_id": row["program_id"], "origin": row["origin"], "seq": row["seq"], "entity": row["entity"],
            "id": row["entity_id"], "op": row["op"], "payload": json.loads(row["payload"]), "hlc": row["hlc"],
            "sig": row["sig"]}
