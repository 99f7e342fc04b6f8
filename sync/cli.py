"""The kiosk's sync commands; `register(cli)` adds them to the `kiosk` command.

`python -m sync --data DIR …` runs the same commands without the rest of the kiosk CLI.
"""

import os
from pathlib import Path

import click

from kiosk.cli.kit import Group, cli_message, fail
from sync.protocol import SyncError


def _data_dir(ctx) -> Path:
    """The data folder chosen by `kiosk --data DIR` (ctx.obj), else KIOSK_DATA, else the default."""
    from kiosk.paths import data_dir
    obj = ctx.find_root().obj
    if isinstance(obj, dict):
        obj = obj.get("data") or obj.get("data_dir") or obj.get("DATA_DIR")
    elif obj is not None and not isinstance(obj, (str, os.PathLike)):
        obj = getattr(obj, "folder", None)  # kiosk.cli.main.Context
    return data_dir(obj)


@click.command("sync")
@click.option("--peer", "url", default=None, help="Sync with this kiosk (or server) instead of the central server.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.pass_context
def sync_command(ctx, url, quiet):
    """Syncs now, both ways, with the central server or a paired kiosk.

    Example: kiosk sync        or        kiosk sync --peer http://192.168.1.20:8080
    """
    from sync.client import sync_once

    def progress(event, n):
        if not quiet:
            totals[event] = totals.get(event, 0) + n
            click.echo(f"{event} {totals[event]}")

    totals: dict[str, int] = {}
    summary = sync_once(_data_dir(ctx), url=url, progress=progress)
    click.echo(f"done: pushed {summary['pushed']}, pulled {summary['pulled']}, clock offset "
               f"{summary['clock_offset_s'] if summary['clock_offset_s'] is not None else '?'}s")
    for rotation in summary["rotated"]:
        click.echo(f"restored backup detected: now writing as device {rotation['new']}")


@click.command("enrol")
@click.argument("url")
@click.argument("code")
@click.option("--name", default=None, help="A name for this kiosk on the other side.")
@click.option("--peer", is_flag=True, help="URL is another kiosk at this venue, not the central server.")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The server's CA certificate (its ca.pem), when it serves https with its own local CA.")
@click.pass_context
def enrol_command(ctx, url, code, name, peer, ca):
    """Enrols this kiosk with the central server (or pairs it with another kiosk) using a one-time code.

    \b
    Example: kiosk enrol https://central.example.go.th ABCD-EFGH-JKLM
    A central server with its own CA (kiosk-central serve --https):
        kiosk enrol --ca /media/usb/ca.pem https://10.0.0.5:8443 ABCD-EFGH-JKLM
    """
    from sync.client import enrol
    answer = enrol(_data_dir(ctx), url, code, name, kind="peer" if peer else "central", ca=ca)
    click.echo(f"enrolled as {answer['device_id']} with {answer.get('server_id')}")
    if answer.get("plain_http"):
        click.echo("warning: enrolled over plain http: the device secret and personal data cross the network "
                   "readable by anyone on it. Serve the central server with --https.", err=True)


@click.command("pair-code")
@click.option("--hours", default=12.0, show_default=True)
@click.option("--program", "programs", multiple=True,
              help="Share only these program ids with the laptop that pairs (default: every one both may hold).")
@click.option("--qr", "qr_file", type=click.Path(dir_okay=False), default=None, help="Also write a QR PNG here.")
@click.pass_context
def pair_code_command(ctx, hours, programs, qr_file):
    """Makes a one-time code with which another kiosk at this venue pairs with this one.

    The two laptops share only the programs both may hold: those the central server enrolled
    each for, and the --program ids given here.

    Example: kiosk pair-code   (then on the other laptop: kiosk enrol --peer http://THIS-LAPTOP:8080 CODE)
    """
    from sync.state import SyncState
    code = SyncState(_data_dir(ctx)).create_pair_code(hours, list(programs) or None)
    if qr_file:
        from kiosk.paths import write_atomically
        from kiosk.webkit.qr import qr_png
        write_atomically(qr_file, qr_png(code))
    click.echo(code)


@click.command("export-bundle")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--program", "programs", multiple=True, help="Only these program ids.")
@click.pass_context
def export_bundle_command(ctx, file, programs):
    """Writes this kiosk's changes into a USB bundle (.jsonl.gz).

    Example: kiosk export-bundle /media/usb/door-a.jsonl.gz
    """
    from kiosk.store.db import open_data_dir
    from sync.bundle import export_kiosk
    db = open_data_dir(_data_dir(ctx))
    try:
        manifest = export_kiosk(db, file, list(programs) or None)
    except SyncError as exc:
        fail(exc)
    finally:
        db.close()
    click.echo(f"wrote {sum(p['changes'] for p in manifest['programs'].values())} changes to {file}")


TRUST_NEW_HINT = (
    "Nothing was imported. To set this kiosk up with that program from the bundle, run the same command"
    " with --trust-new (and --program-key with the program's key, printed by `kiosk program key` on a kiosk"
    " that has it): the kiosk then takes the program and its people from the bundle itself. The bundle can"
    " then only be checked against itself, so do it only with a bundle from your own central server or"
    " from a kiosk of that program.")
KEY_HINT = ("Nothing was imported. The bundle is sealed with the program's key, which never travels in a bundle:"
            " print it with `kiosk program key` on a kiosk that has it (or ask the central office), then run"
            " the same command with --program-key.")


@click.command("import-bundle")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--trust-new", is_flag=True, help="Accept a program this kiosk does not hold yet.")
@click.option("--program-key", metavar="KEY",
              help="The program's key (13 groups of four), for a program this kiosk has no key of.")
@click.pass_context
def import_bundle_command(ctx, file, trust_new, program_key):
    """Applies a USB bundle whole; importing it twice changes nothing.

    \b
    Example: kiosk import-bundle /media/usb/central.jsonl.gz
    A new program, on a kiosk with no network:
        kiosk import-bundle --trust-new --program-key ABCD-EFGH-... /media/usb/central.jsonl.gz
    """
    from kiosk.store.db import open_data_dir
    from sync.bundle import import_kiosk
    db = open_data_dir(_data_dir(ctx))
    try:
        result = import_kiosk(db, file, trust_new, program_key)
    except SyncError as exc:
        if exc.reason == "wrong_program" and not trust_new:
            raise click.ClickException(f"{cli_message(exc)}\n{TRUST_NEW_HINT}") from None
        if exc.reason == "program_key_missing":
            raise click.ClickException(f"{cli_message(exc)}\n{KEY_HINT}") from None
        fail(exc)
    finally:
        db.close()
    click.echo(f"{result['applied']} new of {result['changes']} changes")


@click.command("peer-serve")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.pass_context
def peer_serve_command(ctx, host, port):
    """Serves only the sync endpoints of this kiosk to paired peers (`kiosk serve` does it too).

    Example: kiosk peer-serve --port 8081
    """
    from kiosk.webkit.connections import serve
    from sync.peer import create_peer_app
    from sync.protocol import MAX_REQUEST_BYTES
    click.echo(f"peer sync on http://{host}:{port}", err=True)
    serve(create_peer_app(_data_dir(ctx)), host, port, threads=4, max_request_body_size=MAX_REQUEST_BYTES + 1)


COMMANDS = (sync_command, enrol_command, pair_code_command, export_bundle_command, import_bundle_command,
            peer_serve_command)


def register(cli_group) -> None:
    """Adds `sync`, `enrol`, `pair-code`, `export-bundle`, `import-bundle` and `peer-serve`."""
    for command in COMMANDS:
        cli_group.add_command(command)


@click.group(cls=Group)
@click.option("--data", type=click.Path(file_okay=False), default=None, help="The kiosk's data folder.")
@click.pass_context
def main(ctx, data):
    """The kiosk's sync commands on their own."""
    ctx.obj = {"data": data}


register(main)
