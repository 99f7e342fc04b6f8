"""The typed read tables, projected from the change log in the transaction that stores a batch.

Each entity's row holds the winning value of every field by HLC (per-field last-writer-wins, as
on a kiosk), the stamps in `clocks`, and a delete's stamp in `deleted`. Beside the rows, two
counts are kept so that a national dashboard sums a few thousand rows instead of a million:
`participants.attended` (how many attendance rows the person has) and `area_counts` (active
people, and those who came at least once, per program, cohort, role and area).

Attendance is the kiosk's (`kiosk.store.changes.derive_attendance`): per (participant, session)
the earliest check-in after the latest undo by a coordinator (`undos` keeps that undo), whatever
order the scans arrive in. An undo that moves later derives the key's attendance again from its
scans; a check-in at or before the undo held is taken back the same way.

Two processes may push at once (PostgreSQL): the rows a batch touches are read `FOR UPDATE` in
id order, and a new row another transaction made first ends the attempt with `LostRace`, which
the write's retry runs again from the start. A batch with undos holds its people's rows before
it reads `undos`; a batch of check-ins reads `undos` after writing attendance and counts, which
wait for those rows: whichever commits second sees the other. Attendance of a person not held
yet gets a placeholder row (no status, no stamps) that holds the count until the person arrives.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import and_, bindparam, case, delete, func, select, tuple_, update

from sync.central.storage.tables import (
    READ_TABLES,
    area_counts,
    attendance,
    participants,
    scans,
    sessions,
    undos,
)

KEYS = ("program_id", "id", "clocks", "deleted", "attended")
COLUMNS = {name: tuple(c.name for c in table.columns if c.name not in KEYS) for name, table in READ_TABLES.items()}
# What a kiosk's table fills in when a row's first insert leaves the field out (kiosk.store.schema).
DEFAULTS = {"participants": {"role": "participant", "status": "active"},
            "sessions": {"slot": "day", "opens_at": "06:00", "closes_at": "18:00", "status": "active"},
            "sites": {"kind": "venue"}}
AREA_KEY = ("cohort_id", "role", "province_code", "district_code", "subdistrict_code")
REMOVED = "removed"  # a session's status once a coordinator took it out: its attendance counts nowhere


class LostRace(Exception):
    """Another transaction made a row this one was about to make: run the whole write again."""


def merge_row(entity: str, row: dict | None, program_id: str, entity_id: str, changes: list[dict]) -> dict:
    """The row after `changes` (any order): each field takes the value of its latest stamp."""
    row = dict(row) if row else {"program_id": program_id, "id": entity_id, "deleted": None, "clocks": "{}",
                                 **({"attended": 0} if entity == "participants" else {}),
                                 **dict.fromkeys(COLUMNS[entity])}
    clocks = json.loads(row["clocks"])
    if not clocks:  # a new row, or a placeholder: the kiosk's defaults until a change sets the field
        row.update({k: v for k, v in DEFAULTS.get(entity, {}).items() if row.get(k) is None})
    kept = COLUMNS[entity]
    for change in changes:
        stamp = change["hlc"]
        if change["op"] == "delete":
            row["deleted"] = max(row["deleted"] or stamp, stamp)
            continue
        for name, value in change["payload"].items():
            if name in kept and (name not in clocks or stamp > clocks[name]):
                row[name], clocks[name] = value, stamp
    row["clocks"] = json.dumps(clocks, sort_keys=True, separators=(",", ":"))
    return row


def placeholder(program_id: str, person_id: str, attended: int = 0) -> dict:
    """The row of a person whose changes have not arrived: only the count of their attendance."""
    return merge_row("participants", None, program_id, person_id, []) | {"role": None, "status": None,
                                                                           "attended": attended}


def marks(program_id: str, rows) -> tuple[dict[tuple, dict], dict[tuple, str]]:
    """Of a batch's scans, per (participant, session): the earliest check-in (by time, then id)
    as an attendance row, and the time of the latest undo."""
    firsts: dict[tuple, dict] = {}
    undone: dict[tuple, str] = {}
    for row in rows:
        key = (row["participant_id"], row["session_id"])
        if not key[0]:
            continue
        if row["result"] == "checked_in" and (row["direction"] or "in") == "in":
            if key not in firsts or (row["at"], row["id"]) < (firsts[key]["first_at"], firsts[key]["first_scan_id"]):
                firsts[key] = {"program_id": program_id, "participant_id": key[0], "session_id": key[1],
                               "first_at": row["at"], "first_scan_id": row["id"]}
        elif row["result"] == "undone" and row["at"] > undone.get(key, ""):
            undone[key] = row["at"]
    return firsts, undone


def removed(session: dict | None) -> int:
    """1 for a session a coordinator removed, 0 for any other (or none yet)."""
    return int(bool(session) and session.get("status") == REMOVED)


def counted_attendance():
    """Attendance with its session, if held: what a person's count counts (`still_held`)."""
    return attendance.outerjoin(sessions, and_(sessions.c.program_id == attendance.c.program_id,
                                               sessions.c.id == attendance.c.session_id))


def still_held():
    """Of `counted_attendance`, the rows of a session not removed (or not arrived yet)."""
    return func.coalesce(sessions.c.status, "active") != REMOVED


def _of_key(table, program_id: str, key: tuple) -> tuple:
    return table.c.program_id == program_id, table.c.participant_id == key[0], table.c.session_id == key[1]


def area_key(row: dict) -> tuple:
    return (row["program_id"], *[row.get(k) or "" for k in AREA_KEY])


def contribution(row: dict | None) -> tuple | None:
    """(area key, came at least once) of an active person, None for anyone else."""
    if not row or row.get("deleted") or row.get("status") != "active":
        return None
    return area_key(row), bool(row.get("attended"))


def add_delta(deltas: dict, before: dict | None, after: dict | None) -> None:
    """Counts a person's move between areas, statuses or first attendance into `deltas`."""
    for found, sign in ((contribution(before), -1), (contribution(after), 1)):
        if found:
            counts = deltas.setdefault(found[0], [0, 0])
            counts[0] += sign
            counts[1] += sign * found[1]


class Projection:
    """Typed rows and counts kept from the change log (a part of Storage)."""

    def _project(self, conn, program_id: str, fresh: list[dict], deltas: dict) -> None:
        """Merges a batch's non-event changes into their typed rows."""
        grouped: dict[str, dict[str, list[dict]]] = {}
        for change in fresh:
            if change["entity"] in READ_TABLES:
                grouped.setdefault(change["entity"], {}).setdefault(change["id"], []).append(change)
        for entity in sorted(grouped):
            self._merge_entity(conn, program_id, entity, grouped[entity], deltas)

    def _held_rows(self, conn, program_id: str, entity: str, ids) -> dict[str, dict]:
        table = READ_TABLES[entity]
        query = (select(table).where(table.c.program_id == program_id, self.among(table.c.id, sorted(ids)))
                 .order_by(table.c.id).with_for_update())
        return {r["id"]: dict(r) for r in conn.execute(query).mappings()}

    def _merge_entity(self, conn, program_id: str, entity: str, by_id: dict[str, list[dict]], deltas: dict) -> None:
        held = self._held_rows(conn, program_id, entity, by_id)
        new, changed = [], []
        for entity_id in sorted(by_id):
            before = held.get(entity_id)
            after = merge_row(entity, before, program_id, entity_id, by_id[entity_id])
            if before is None:
                new.append(after)
            elif after != before:
                changed.append(after)
        if entity == "participants":
            self._count_new_people(conn, program_id, new)
            for row in new + changed:
                add_delta(deltas, held.get(row["id"]), row)
        self._insert_new(conn, entity, new)
        self._update_rows(conn, entity, changed)
        if entity == "sessions":
            self._count_removals(conn, program_id, {r["id"]: removed(r) - removed(held.get(r["id"]))
                                                    for r in new + changed}, deltas)

    def _count_removals(self, conn, program_id: str, flips: dict[str, int], deltas: dict) -> None:
        """A session removed (+1) stops counting its attendance in the people's counts; restored
        (-1), counts it again. Its row is held: a batch adding attendance to it waits
        (`_removed_sessions`)."""
        flips = {k: n for k, n in flips.items() if n}
        if not flips:
            return
        more: Counter = Counter()
        for person, session in conn.execute(select(attendance.c.participant_id, attendance.c.session_id).where(
                attendance.c.program_id == program_id, self.among(attendance.c.session_id, sorted(flips)))):
            more[person] -= flips[session]
        self._count_attendance(conn, program_id, more, deltas)

    def _removed_sessions(self, conn, program_id: str, ids) -> set[str]:
        """Which of these sessions a coordinator removed. Their rows are shared-held, so that a
        removal or a restore in another transaction counts this batch's attendance too."""
        query = (select(sessions.c.id, sessions.c.status)
                 .where(sessions.c.program_id == program_id, self.among(sessions.c.id, sorted(ids)))
                 .order_by(sessions.c.id).with_for_update(read=True))
        return {i for i, status in conn.execute(query) if status == REMOVED}

    def _insert_new(self, conn, entity: str, rows: list[dict]) -> None:
        if not rows:
            return
        table = READ_TABLES[entity]
        done = self._executemany(conn, f"new:{entity}", lambda: self.insert(table).on_conflict_do_nothing(), rows)
        if done is not None and done < len(rows):
            raise LostRace(f"a {entity} row was made by another transaction")

    def _update_rows(self, conn, entity: str, rows: list[dict]) -> None:
        table = READ_TABLES[entity]
        names = [c for c in (*COLUMNS[entity], "clocks", "deleted")]

        def build():
            return (update(table).where(table.c.program_id == bindparam("k_program"), table.c.id == bindparam("k_id"))
                    .values({n: bindparam(n) for n in names}))
        self._executemany(conn, f"update:{entity}", build,
                          [{**{n: r[n] for n in names}, "k_program": r["program_id"], "k_id": r["id"]} for r in rows])

    def _count_new_people(self, conn, program_id: str, rows: list[dict]) -> None:
        """A person arriving after their attendance (relayed by another kiosk) starts with its count."""
        if not rows:
            return
        counted = dict(conn.execute(
            select(attendance.c.participant_id, func.count()).select_from(counted_attendance()).where(
                attendance.c.program_id == program_id, self.among(attendance.c.participant_id, [r["id"] for r in rows]),
                still_held()).group_by(attendance.c.participant_id)).all())
        for row in rows:
            row["attended"] = counted.get(row["id"], 0)

    def _store_attendance(self, conn, program_id: str, rows, deltas: dict) -> None:
        """Attendance from a batch's scans as a kiosk derives it (kiosk.store.changes.derive_attendance):
        per (participant, session), the earliest check-in after the latest undo by a coordinator,
        whatever order the scans arrive in; each person's count with it."""
        firsts, undone = marks(program_id, rows)
        if undone:
            raised = self._raise_undos(conn, program_id, undone)
            firsts = {k: v for k, v in firsts.items() if k not in raised}  # derived again from every scan
            self._rederive(conn, program_id, raised, deltas)
        if firsts:
            self._add_firsts(conn, program_id, firsts, deltas)
            # an undo that came first, or through another process while this batch waited for
            # the rows it holds, cancels the batch's check-ins made before it
            self._rederive(conn, program_id, self._undone_since(conn, program_id, firsts), deltas)

    def _add_firsts(self, conn, program_id: str, firsts: dict[tuple, dict], deltas: dict) -> None:
        """New attendance rows and earlier first check-ins (by time, then scan id, as on a kiosk)."""
        gone = self._removed_sessions(conn, program_id, {k[1] for k in firsts})
        made = self._new_attendance(conn, program_id, [firsts[k] for k in sorted(firsts)])
        earlier = [firsts[k] for k in sorted(firsts) if k not in made]

        def earlier_upsert():
            stmt = self.insert(attendance)
            return stmt.on_conflict_do_update(
                index_elements=["program_id", "participant_id", "session_id"],
                set_={"first_at": stmt.excluded.first_at, "first_scan_id": stmt.excluded.first_scan_id},
                where=tuple_(stmt.excluded.first_at, stmt.excluded.first_scan_id)
                < tuple_(attendance.c.first_at, attendance.c.first_scan_id))
        self._executemany(conn, "attendance", earlier_upsert, earlier)
        # attendance of a removed session counts nowhere, but its people's rows are held all the
        # same: an undo pushed at once through another process waits for them (`_raise_undos`)
        self._hold_people(conn, program_id, sorted({p for p, s in made if s in gone}))
        self._count_attendance(conn, program_id, Counter(p for p, s in made if s not in gone), deltas)

    def _count_attendance(self, conn, program_id: str, more: Counter, deltas: dict) -> None:
        """participants.attended moved by each person's change of attendance rows, and the areas' counts."""
        more = {k: n for k, n in more.items() if n}
        for after in self._add_attended(conn, program_id, more):
            add_delta(deltas, {**after, "attended": after["attended"] - more[after["id"]]}, after)

    def _raise_undos(self, conn, program_id: str, undone: dict[tuple, str]) -> dict[tuple, str]:
        """Keeps the latest undo of each (participant, session); returns those the batch moved
        later. The people's rows are held first: a check-in of theirs pushed through another
        process at once waits for them, and then sees the undo (`_undone_since`)."""
        self._hold_people(conn, program_id, sorted({k[0] for k in undone}))
        held = self._undos_of(conn, program_id, undone)
        raised = {k: at for k, at in sorted(undone.items()) if at > held.get(k, "")}

        def build():
            stmt = self.insert(undos)
            return stmt.on_conflict_do_update(index_elements=["program_id", "participant_id", "session_id"],
                                              set_={"at": stmt.excluded.at}, where=stmt.excluded.at > undos.c.at)
        self._executemany(conn, "undos", build, [{"program_id": program_id, "participant_id": k[0],
                                                  "session_id": k[1], "at": at} for k, at in raised.items()])
        return raised

    def _undos_of(self, conn, program_id: str, keys) -> dict[tuple, str]:
        """The latest undo held of each (participant, session) of `keys` that has one."""
        found = conn.execute(select(undos.c.participant_id, undos.c.session_id, undos.c.at).where(
            undos.c.program_id == program_id, self.among(undos.c.participant_id, sorted({k[0] for k in keys}))))
        return {(p, s): at for p, s, at in found if (p, s) in keys}

    def _undone_since(self, conn, program_id: str, firsts: dict[tuple, dict]) -> dict[tuple, str]:
        """The keys of `firsts` whose check-in of the batch was undone (an undo at or after it)."""
        return {k: at for k, at in self._undos_of(conn, program_id, firsts).items() if at >= firsts[k]["first_at"]}

    def _rederive(self, conn, program_id: str, since: dict[tuple, str], deltas: dict) -> None:
        """The attendance of each (participant, session) again from its scans: the earliest
        check-in after `since[key]`, its latest undo."""
        more: Counter = Counter()
        removed_here = self._removed_sessions(conn, program_id, {k[1] for k in since})
        for key in sorted(since):
            gone = conn.execute(delete(attendance).where(*_of_key(attendance, program_id, key))
                                .returning(attendance.c.session_id)).first() is not None
            first = conn.execute(select(scans.c.id, scans.c.at).where(
                *_of_key(scans, program_id, key), scans.c.result == "checked_in",
                func.coalesce(scans.c.direction, "in") == "in", scans.c.at > since[key])
                .order_by(scans.c.at, scans.c.id).limit(1)).first()
            if first is not None:
                conn.execute(attendance.insert().values(program_id=program_id, participant_id=key[0],
                                                        session_id=key[1], first_at=first.at, first_scan_id=first.id))
            more[key[0]] += 0 if key[1] in removed_here else (first is not None) - gone
        self._count_attendance(conn, program_id, more, deltas)

    def rederive_undone(self, conn) -> None:
        """Every attendance a coordinator undid, derived again (an upgrade that made `undos`)."""
        found: dict[str, dict[tuple, str]] = {}
        for program_id, person, session, at in conn.execute(select(undos)):
            found.setdefault(program_id, {})[(person, session)] = at
        for program_id, since in sorted(found.items()):
            self._hold_people(conn, program_id, sorted({k[0] for k in since}))
            self._rederive(conn, program_id, since, {})

    def _hold_people(self, conn, program_id: str, ids: list[str]) -> None:
        """Holds the people's rows (in id order), making a placeholder for those not held yet."""
        held = self._held_rows(conn, program_id, "participants", ids)
        missing = [placeholder(program_id, i) for i in ids if i not in held]
        self._count_new_people(conn, program_id, missing)
        self._insert_new(conn, "participants", missing)

    def _new_attendance(self, conn, program_id: str, rows: list[dict]) -> set[tuple]:
        """Inserts the rows not held yet; returns their (participant, session). PostgreSQL says
        which it inserted (two processes may insert the same at once: one waits and skips);
        SQLite has one writer, which looks first."""
        if self.dialect == "postgresql":
            sql = ("INSERT INTO attendance (program_id, participant_id, session_id, first_at, first_scan_id)"
                   " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
                   " ON CONFLICT DO NOTHING RETURNING participant_id, session_id")
            columns = ("program_id", "participant_id", "session_id", "first_at", "first_scan_id")
            return set(conn.exec_driver_sql(sql, tuple([r[c] for r in rows] for c in columns)).all())
        held = set(conn.execute(select(attendance.c.participant_id, attendance.c.session_id).where(
            attendance.c.program_id == program_id,
            self.among(attendance.c.participant_id, sorted({r["participant_id"] for r in rows})))).all())
        new = [r for r in rows if (r["participant_id"], r["session_id"]) not in held]
        self.bulk_insert(conn, attendance, new)
        return {(r["participant_id"], r["session_id"]) for r in new}

    def _add_attended(self, conn, program_id: str, more: dict[str, int]) -> list[dict]:
        """participants.attended += n for each (id, n); returns the rows after. The UPDATE holds
        each row (two processes count one after the other); a person not held yet gets a
        placeholder row with the count."""
        if not more:
            return []
        ids, counts = zip(*sorted(more.items()))
        back = ", ".join(f"participants.{c}" for c in ("id", "attended", "deleted", "status", *AREA_KEY))
        if self.dialect == "postgresql":
            found = conn.exec_driver_sql(
                "UPDATE participants SET attended = participants.attended + v.more"
                " FROM unnest(%b::text[], %b::bigint[]) AS v(id, more)"
                f" WHERE participants.program_id = %s AND participants.id = v.id RETURNING {back}",
                (list(ids), list(counts), program_id)).mappings().all()
        else:  # one writer at a time: count, then read the rows back
            def build():
                return (update(participants).where(participants.c.program_id == bindparam("k_program"),
                                                   participants.c.id == bindparam("k_id"))
                        .values(attended=participants.c.attended + bindparam("more")))
            self._executemany(conn, "count:attendance", build,
                              [{"more": n, "k_program": program_id, "k_id": i} for i, n in zip(ids, counts)])
            found = self._held_rows(conn, program_id, "participants", ids).values()
        rows = [{**r, "program_id": program_id} for r in found]
        missing = sorted(set(ids) - {r["id"] for r in rows})
        self._insert_new(conn, "participants", [placeholder(program_id, i, max(more[i], 0)) for i in missing])
        return rows

    def _apply_deltas(self, conn, deltas: dict) -> None:
        """Adds the batch's changes of counts to `area_counts` (rows in key order: no deadlock)."""
        rows = [dict(zip(("program_id", *AREA_KEY), key), registered=d[0], attended=d[1])
                for key, d in sorted(deltas.items()) if d != [0, 0]]

        def build():
            stmt = self.insert(area_counts)
            return stmt.on_conflict_do_update(
                index_elements=[c.name for c in area_counts.primary_key],
                set_={"registered": area_counts.c.registered + stmt.excluded.registered,
                      "attended": area_counts.c.attended + stmt.excluded.attended})
        self._executemany(conn, "area_counts", build, rows)

    def rebuild_counts(self, conn, program_id: str | None = None) -> None:
        """Counts every person's attendance and every area's people again from the rows (the
        upgrade that made these tables, or a repair)."""
        where = [participants.c.program_id == program_id] if program_id else []
        counted = (select(func.count()).select_from(counted_attendance())
                   .where(attendance.c.program_id == participants.c.program_id,
                          attendance.c.participant_id == participants.c.id, still_held())
                   .scalar_subquery())
        conn.execute(update(participants).where(*where).values(attended=counted))
        self.count_areas(conn, program_id)

    def count_areas(self, conn, program_id: str | None = None) -> None:
        """`area_counts` made again from the people's rows and counts (a bulk load writes those)."""
        where = [participants.c.program_id == program_id] if program_id else []
        conn.execute(delete(area_counts).where(*([area_counts.c.program_id == program_id] if program_id else [])))
        keys = [participants.c.program_id, *[func.coalesce(participants.c[k], "") for k in AREA_KEY]]
        query = (select(*keys, func.count(), func.sum(case((participants.c.attended > 0, 1), else_=0)))
                 .where(*where, participants.c.status == "active", participants.c.deleted.is_(None))
                 .group_by(*keys))
        conn.execute(area_counts.insert().from_select(
            ["program_id", *AREA_KEY, "registered", "attended"], query))

    def _people_without_rows(self, conn) -> None:
        """Placeholders for people with attendance but no row (their changes never arrived)."""
        missing = (select(attendance.c.program_id, attendance.c.participant_id).distinct()
                   .where(~select(participants.c.id).where(
                       and_(participants.c.program_id == attendance.c.program_id,
                            participants.c.id == attendance.c.participant_id)).exists()))
        conn.execute(participants.insert().from_select(
            ["program_id", "id"], missing))


def bulk_row(entity: str, program_id: str, fields: dict) -> dict:
    """A typed row as the projection leaves it after one change setting `fields` (stamped "0"):
    for a bulk path (a benchmark, an import) that writes the tables without the change log."""
    row = merge_row(entity, None, program_id, fields["id"],
                    [{"op": "upsert", "hlc": "0", "payload": {k: v for k, v in fields.items() if k != "id"}}])
    return {**row, "attended": fields.get("attended", 0)} if entity == "participants" else row
