"""Alembic's entry for the `alembic` command line: runs on the database of KIOSK_CENTRAL_DATABASE.

The server itself never comes here: `sync.central.migrations.upgrade` runs the revisions on its
own connection, inside the transaction that holds the start-up lock. Once at the head, the
rebuild of the read tables a revision asked for runs here too (`sync.central.storage.rebuild`).
"""

import os

from alembic import context
from sqlalchemy import create_engine

from sync.central.storage import rebuild
from sync.central.storage.tables import metadata

url = os.environ.get("KIOSK_CENTRAL_DATABASE") or context.config.get_main_option("sqlalchemy.url")
with create_engine(url).connect() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
        if context.get_context().get_current_revision() == context.get_head_revision():
            rebuild.run(connection)
