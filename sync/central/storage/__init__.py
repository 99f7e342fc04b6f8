"""The central server's storage through SQLAlchemy Core: one SQL path for SQLite and PostgreSQL.

The central server is a replica of every device's change log (`changes`, `vectors`) plus read
tables kept up to date from it, in the same transaction, for the dashboards and reports:

* one typed table per entity (`programs`, `sites`, `cohorts`, `sessions`, `targets`,
  `participants`, `badges`, `progress_entries`), with the kiosk's column names, holding each
  field's winning value by HLC (per-field last-writer-wins, as on a kiosk);
* `scans`    - every scan event, once (union by id), with the pushing device's clock offset;
* `attendance` - one row per (participant, session): its earliest check-in after the latest undo
  by a coordinator (`undos`), as a kiosk derives it;
* `area_counts` - active people and those who came, per program, cohort, role and area.

Writes use `INSERT … ON CONFLICT … DO UPDATE … WHERE`, which reads the same on both databases;
each batch is deduplicated first because PostgreSQL refuses to touch a row twice in a statement.

`Storage` is a thin facade over four parts, one module each: `accounts` (coordinators, the
login back-off), `devices` (enrolment, revocation, nonces, rooms), `changelog` (push, pull, the
server's own changes), `privacy` (erasure, retention, a person's record) and `readmodel` (the read tables, with `projection` keeping the typed
rows and counts); `base` holds the engine and the write discipline, `statements` the compiled
statements for many rows, `tables` the schema, whose changes are Alembic revisions
(`sync.central.migrations`), and `rebuild` the read tables filled again after an upgrade.
Nothing of a process's own memory decides anything two processes must agree on: several may
serve one PostgreSQL database.
"""

from sync.central.storage.accounts import Accounts
from sync.central.storage.base import Database
from sync.central.storage.changelog import ChangeLog
from sync.central.storage.devices import Devices
from sync.central.storage.privacy import Privacy
from sync.central.storage.readmodel import ReadModel
from sync.central.storage.tables import attendance, changes, dump, make_engine, metadata, scans

_dump = dump  # the name scripts/bench/sync.py uses


class Storage(Accounts, Devices, ChangeLog, Privacy, ReadModel, Database):
    """The central server's data: accounts, devices and enrolment, the change log, the read
    tables, and erasure and retention (privacy)."""


__all__ = ["Storage", "attendance", "changes", "dump", "make_engine", "metadata", "scans"]
