"""What the project's command lines share: one format for a refused act, who ran a command."""

import getpass

import click

from kiosk.errors import KioskError, message_of


def cli_message(exc: KioskError) -> str:
    """A domain error as one line: the reason's message, the detail when it adds one, and the code."""
    text, detail = message_of(exc.reason), str(exc)
    body = text if detail == text else f"{text} ({detail})"
    return f"{body} [{exc.reason}]"


def fail(exc: KioskError):
    """Ends a command on a domain error, in the one format (exit code 1)."""
    raise click.ClickException(cli_message(exc)) from None


class Group(click.Group):
    """A command group whose domain errors, from any command under it, end as `fail` ends them."""

    group_class = type  # subgroups are Groups too

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KioskError as exc:
            fail(exc)


def operator() -> str:
    """Who ran a command, for the audit line of a paper with names: the computer's user."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no name for this account (a container's numeric user)
        return "cli"


def write_person_record(record: dict, out) -> None:
    """Writes a person's record (a Thai PDF, or JSON by the file's extension) with its audit line."""
    from kiosk.documents.records import write_record
    from kiosk.ops import log

    write_record(record, out)
    log.audit("person_record", operator(), participant_id=record["person"]["id"])
    click.echo(f"written: {out}")
