"""The read tables rebuilt from the change log, by the projection of the newest revision.

A revision that makes read tables or adds columns to them asks for a rebuild (`request`) rather
than replaying the change log itself: the projection writes the tables as they are at the head,
so a replay run by an older revision would name columns its database does not have yet. Once
every revision has run, `run` replays the entities asked for (oldest stamp first), re-derives
the attendance a coordinator undid (`Projection.rederive_undone`) and counts again, in the
upgrade's transaction.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select

from sync.central.storage.projection import Projection
from sync.central.storage.statements import Statements
from sync.central.storage.tables import READ_TABLES, changes, meta

KEY = "rebuild_read_tables"  # the meta row: a JSON list of the entities to replay ("*": every one)
CHUNK = 5000


class Replay(Projection, Statements):
    """The server's projection on the upgrade's connection."""


def request(conn, entities: list[str]) -> None:
    """Asks for the entities' rows to be replayed (and the counts made again) after the upgrade."""
    held = conn.execute(select(meta.c.value).where(meta.c.key == KEY)).scalar()
    wanted = sorted(set(json.loads(held) if held else []) | set(entities))
    conn.execute(delete(meta).where(meta.c.key == KEY))
    conn.execute(meta.insert().values(key=KEY, value=json.dumps(wanted)))


def run(conn) -> None:
    """Runs the rebuild a revision asked for, if any."""
    held = conn.execute(select(meta.c.value).where(meta.c.key == KEY)).scalar()
    if held is None:
        return
    wanted = set(json.loads(held))
    entities = sorted(READ_TABLES) if "*" in wanted else sorted(wanted & set(READ_TABLES))
    projector = Replay(conn.dialect)
    for program_id in [r[0] for r in conn.execute(select(changes.c.program_id).distinct())]:
        _replay(conn, projector, program_id, entities)
    projector._people_without_rows(conn)
    projector.rederive_undone(conn)
    projector.rebuild_counts(conn)
    conn.execute(delete(meta).where(meta.c.key == KEY))


def _replay(conn, projector: Replay, program_id: str, entities: list[str]) -> None:
    if not entities:
        return
    query = (select(changes.c.origin, changes.c.seq, changes.c.entity, changes.c.entity_id, changes.c.op,
                    changes.c.payload, changes.c.hlc)
             .where(changes.c.program_id == program_id, changes.c.entity.in_(entities))
             .order_by(changes.c.hlc, changes.c.origin, changes.c.seq).execution_options(yield_per=CHUNK))
    for chunk in conn.execute(query).partitions():
        projector._project(conn, program_id, [_change(program_id, r) for r in chunk], {})


def _change(program_id: str, row) -> dict:
    return {"program_id": program_id, "origin": row.origin, "seq": row.seq, "entity": row.entity,
            "id": row.entity_id, "op": row.op, "payload": json.loads(row.payload), "hlc": row.hlc}
