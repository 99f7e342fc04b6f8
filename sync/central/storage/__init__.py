"""The central server's storage through SQLAlchemy Core: one SQL path for SQLite and PostgreSQL.

The central server is a replica of every device's change log (`changes`, `vectors`) plus read
tables kept up to date from it for the dashboards:

* `fields`   - one row per (entity, id, field) holding the winning value by HLC
  (per-field last-writer-wins, as on a kiosk); a delete is the field `_deleted`;
* `scans`    - every scan event, once (union by id), with the pushing device's clock offset;
* `attendance` - one row per (participant, session) with a successful check-in.

Writes use `INSERT … ON CONFLICT … DO UPDATE … WHERE`, which reads the same on both databases;
each batch is deduplicated first because PostgreSQL refuses to touch a row twice in a statement.

`Storage` is a thin facade over four parts, one module each: `accounts` (coordinators),
`devices` (enrolment, revocation, nonces), `changelog` (push, pull, the server's own changes)
and `readmodel` (the dashboards' tables); `base` holds the engine and the write discipline,
`tables` the schema.
"""

from sync.central.storage.accounts import Accounts
from sync.central.storage.base import Database
from sync.central.storage.changelog import ChangeLog
from sync.central.storage.devices import Devices
from sync.central.storage.readmodel import MATERIALIZED, ReadModel
from sync.central.storage.tables import attendance, changes, dump, fields, make_engine, metadata, scans

_dump = dump  # the name scripts/bench/sync.py uses


class Storage(Accounts, Devices, ChangeLog, ReadModel, Database):
    """The central server's data: accounts, devices and enrolment, the change log, and the read tables."""


__all__ = ["MATERIALIZED", "Storage", "attendance", "changes", "dump", "fields", "make_engine", "metadata", "scans"]
