"""The central server's schema under Alembic, on SQLite and PostgreSQL.

`upgrade(conn)` brings the database behind a connection (in its own transaction, which the
caller commits) to the newest revision; `Storage` calls it at every start, one process at a time.
A database made before Alembic (no `alembic_version`) is taken up by revision 0001, which turns
any older shape into the one main had at 4458c02; 0002 adds the typed read tables; 0003 the
signed statements of revoked origins; 0004 what corrections by hand need. A revision that needs
the read tables filled again asks for it, and the projection of the head does it once every
revision has run (`sync.central.storage.rebuild`).
"""

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sync.central.storage import rebuild

HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return ScriptDirectory.from_config(config)


def current(conn) -> str | None:
    """The revision the database is at (None before any)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn, target: str = "head") -> None:
    """Runs every revision the database lacks, up to `target`, on `conn`'s transaction; at the
    head, then the rebuild of the read tables a revision asked for."""
    directory = scripts()
    if current(conn) != directory.get_current_head() or target != "head":
        context = MigrationContext.configure(conn, opts={"script": directory, "fn": _steps(directory, target)})
        with Operations.context(context), context.begin_transaction():
            context.run_migrations()
    if target == "head":
        rebuild.run(conn)


def _steps(directory: ScriptDirectory, target: str):
    def steps(revision, _context):
        return directory._upgrade_revs(target, revision)
    return steps
