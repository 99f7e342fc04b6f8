"""What every `kiosk` command gets: the data folder, its database opened on demand, a progress bar."""

import sys

import click

from kiosk.paths import data_dir
from kiosk.store.db import open_data_dir


class Context:
    """What every command gets: the data folder and, opened on demand, its database."""

    def __init__(self, folder: str | None):
        self.folder = data_dir(folder)
        self._db = None

    @property
    def db(self):
        if self._db is None:
            self._db = open_data_dir(self.folder)
        return self._db


pass_ctx = click.make_pass_decorator(Context)


def progress(label: str):
    """A progress callback drawing a bar on stderr; returns (callback, finish)."""
    state = {"bar": None}

    def update(done: int, total: int):
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr)
            state["bar"].__enter__()
        state["bar"].update(done - state["bar"].pos)

    def finish():
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)

    return update, finish
