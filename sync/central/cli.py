"""`kiosk-central`: run the central server and look after its devices."""

import sys
from pathlib import Path

import click

from kiosk.cli.kit import Group
from kiosk.paths import write_atomically
from sync.protocol import MAX_REQUEST_BYTES


def _storage(ctx):
    from sync.central import default_url
    from sync.central.storage import Storage
    central = ctx.find_object(CentralOptions)
    url = central.db or default_url(central.ensure_data())
    return Storage(url)


class CentralOptions:
    def __init__(self, data: str, db: str | None):
        self.data, self.db = data, db

    def ensure_data(self) -> Path:
        Path(self.data).mkdir(parents=True, exist_ok=True)
        return Path(self.data)


@click.group(cls=Group)
@click.option("--data", "data", envvar="KIOSK_CENTRAL_DATA", default="central-data", show_default=True,
              help="Folder of the central server's files (and its SQLite database by default).")
@click.option("--db", "db", envvar="KIOSK_CENTRAL_DATABASE", default=None,
              help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/dbname.")
@click.pass_context
def main(ctx, data, db):
    """The central server: stores every kiosk's changes and shows totals across venues."""
    ctx.obj = CentralOptions(data, db)


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--https", is_flag=True, help="Serve HTTPS with a certificate from this server's local CA.")
@click.pass_context
def serve(ctx, host, port, threads, https):
    """Serves the sync API and the dashboards.

    With --https the server makes a local CA (`ca.pem` in its data folder) and a certificate for
    this machine's names and addresses: enrolment answers carry device secrets and pulls carry
    personal data, so use it on any network you do not own. Kiosks trust it through the CA file
    (REQUESTS_CA_BUNDLE=/path/to/ca.pem kiosk enrol https://…).

    Example: kiosk-central --db postgresql+psycopg://kiosk@localhost/central serve --port 8090 --https
    """
    import waitress

    from sync.central import create_app
    options = ctx.find_object(CentralOptions)
    folder = options.ensure_data()
    app = create_app({"CENTRAL_DATA": str(folder), "CENTRAL_DATABASE": options.db, "SESSION_COOKIE_SECURE": https})
    storage = app.extensions["central_storage"]
    scheme = "https" if https else "http"
    click.echo(f"central server {storage.server_id} on {scheme}://{host}:{port}", err=True)
    code = storage.setup_code()
    if code:
        click.echo(f"First start: create the first coordinator at {scheme}://{host}:{port}/setup "
                   f"with the one-time code {code} (or run: kiosk-central user add NAME)", err=True)
    sys.stderr.flush()
    from kiosk.ops.retention import RetentionScheduler

    RetentionScheduler(storage.apply_retention).start()  # the programs' retention dates, daily
    waitress_options = {"max_request_body_size": MAX_REQUEST_BYTES + 1, "channel_timeout": 300,
                        "ident": "kiosk-central"}
    if https:
        from kiosk.webkit.connections import ConnectionGuard
        from kiosk.webkit.https import serve_https

        # kiosks of one office may share its address: the relay bounds the total only
        serve_https(app, host, port, Path(folder), threads, guard=ConnectionGuard(per_client=None), **waitress_options)
    else:
        waitress.serve(app, host=host, port=port, threads=threads, **waitress_options)


@main.command()
@click.pass_context
def migrate(ctx):
    """Brings the database's schema up to date (its Alembic revisions) and says which it is at.

    Every start does the same first; run it alone before starting a release's processes.

    Example: kiosk-central --db postgresql+psycopg://kiosk@localhost/central migrate
    """
    from sync.central import migrations

    storage = _storage(ctx)
    with storage.engine.connect() as conn:
        click.echo(f"schema at revision {migrations.current(conn)}")


@main.command("enrol-code")
@click.option("--name", default=None, help="A name for the device that will use it.")
@click.option("--program", "programs", multiple=True, help="Limit the device to these program ids.")
@click.option("--hours", default=24.0, show_default=True, help="How long the code stays valid.")
@click.option("--qr", "qr_file", type=click.Path(dir_okay=False), default=None, help="Also write a QR PNG here.")
@click.pass_context
def enrol_code(ctx, name, programs, hours, qr_file):
    """Makes a one-time enrolment code for a kiosk.

    Example: kiosk-central enrol-code --name "Door A" --qr code.png
    """
    storage = _storage(ctx)
    code = storage.create_enrol_code(name, list(programs) or None, hours)
    if qr_file:
        from kiosk.webkit.qr import qr_png
        write_atomically(qr_file, qr_png(code))
    click.echo(code)


@main.command()
@click.argument("device_id")
@click.pass_context
def revoke(ctx, device_id):
    """Revokes a device: its requests are refused from now on.

    Example: kiosk-central revoke 1b4e28ba-2fa1-11d2-883f-0016d3cca427
    """
    if not _storage(ctx).revoke(device_id):
        raise click.ClickException(f"no device {device_id}")
    click.echo(f"revoked {device_id}")


@main.command()
@click.pass_context
def devices(ctx):
    """Lists enrolled devices, their last sync and clock offset.

    Example: kiosk-central devices
    """
    for d in _storage(ctx).device_list():
        flag = " CLOCK OFF" if d["skewed"] else ""
        click.echo(f"{d['id']}  {d['name'] or '-'}  last sync {d['last_sync_at'] or '-'}  "
                   f"offset {d['clock_offset_s']}s{flag}  {'REVOKED' if d['revoked_at'] else ''}")


@main.command("import-bundle")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--program-key", metavar="KEY",
              help="The program's key (13 groups of four), for a program whose key this server does not hold.")
@click.pass_context
def import_bundle(ctx, file, program_key):
    """Stores a USB bundle made by a kiosk; importing it twice changes nothing.

    Example: kiosk-central import-bundle /media/usb/door-a.jsonl.gz
    """
    from sync.bundle import import_central
    result = import_central(_storage(ctx), file, program_key=program_key)
    click.echo(f"{result['applied']} new of {result['changes']} changes ({', '.join(result['programs'])})")
    if result["refused"]:
        click.echo(f"refused {result['refused']} changes of revoked devices, made after their revocation")


@main.command("export-bundle")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--program", "programs", multiple=True, help="Only these program ids.")
@click.pass_context
def export_bundle(ctx, file, programs):
    """Writes every change of the programs into a USB bundle for a kiosk with no network.

    Example: kiosk-central export-bundle --program PROGRAM_ID /media/usb/central.jsonl.gz
    """
    from sync.bundle import export_central
    manifest = export_central(_storage(ctx), file, list(programs) or None)
    click.echo(f"wrote {sum(p['changes'] for p in manifest['programs'].values())} changes to {file}")


@main.group()
def user():
    """Coordinator accounts of the central server's pages."""


@user.command("add")
@click.argument("name")
@click.password_option(help="The password (asked for twice when not given).")
@click.pass_context
def user_add(ctx, name, password):
    """Adds a coordinator account (at least 8 characters of password).

    Example: kiosk-central user add somchai
    """
    _storage(ctx).add_user(name, password)
    click.echo(f"added coordinator {name}")


@user.command("password")
@click.argument("name")
@click.password_option(help="The new password (asked for twice when not given).")
@click.pass_context
def user_password(ctx, name, password):
    """Sets a new password; every login of the account ends.

    Example: kiosk-central user password somchai
    """
    _storage(ctx).change_password(name, password)
    click.echo(f"password of {name} changed; its sessions ended")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Let the account log in again.")
@click.pass_context
def user_disable(ctx, name, enable):
    """Shuts a coordinator out (their logins end), or lets them back in with --enable.

    Example: kiosk-central user disable somchai
    """
    _storage(ctx).set_disabled(name, not enable)
    click.echo(f"{name} {'enabled' if enable else 'disabled'}")


# --- what the privacy notice promises (PDPA), for the programs this server holds ------


@main.group()
def person():
    """A person's own record, and erasing a person (PDPA)."""


@person.command("record")
@click.argument("ref", metavar="PERSON")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="FILE.pdf (Thai) or FILE.json.")
@click.pass_context
def person_record(ctx, ref, out):
    """Everything this server holds about a person (PERSON: an id, a badge code or a phone).

    Example: kiosk-central person record 0812345678 --out record.pdf
    """
    from kiosk.cli.kit import write_person_record
    from sync.central.reports import person_record as central_record

    storage = _storage(ctx)
    write_person_record(central_record(storage, storage.find_person(ref)["id"]), out)


@person.command("erase")
@click.argument("ref", metavar="PERSON")
@click.option("--reason", required=True, help="Why (for example: the person asked). No personal data.")
@click.option("--by", default="cli", help="Who asked for it to be done (your user name).")
@click.pass_context
def person_erase(ctx, ref, reason, by):
    """Erase a person's data on this server now and, at their next sync, on every kiosk of the program.

    Example: kiosk-central person erase 0812345678 --reason "asked by letter"
    """
    storage = _storage(ctx)
    found = storage.find_person(ref)
    storage.erase_person(found["id"], reason, by)
    click.echo(f"erased: {found['id']} (their attendance stays, without a name)")


@main.command()
@click.argument("day", required=False)
@click.option("--program", "program_id", help="Program id (with DAY).")
@click.option("--now", "keep_now", is_flag=True, help="Erase now the people of every program whose date has come.")
@click.pass_context
def retention(ctx, day, program_id, keep_now):
    """Show when each program's people are erased, set an earlier date for one, or keep the dates now.

    `serve` keeps the dates by itself at start and daily.

    Example: kiosk-central retention 2027-06-30 --program PROGRAM_ID
    """
    storage = _storage(ctx)
    if keep_now:
        click.echo(f"erased: {storage.apply_retention()} people")
    elif day:
        if not program_id:
            raise click.UsageError("give the program: --program PROGRAM_ID")
        click.echo(f"{program_id}: erased on {storage.set_retention(program_id, day)}")
    else:
        for plan in storage.retention_plan():
            click.echo(f"{plan['date'] or '-'}  {plan['people']:>6} people  {plan['program_id']}  {plan['title'] or ''}")


# --- the office's papers across venues: the kiosk's reports over central's rows ------


def _central_data(ctx, program_id: str, number: int | None, province: str | None):
    from kiosk.errors import KioskError
    from sync.central.reports import central_dataset

    storage = _storage(ctx)
    data = central_dataset(storage, program_id, number, province)
    if data is None:
        raise KioskError("unknown_cohort" if number is not None else "unknown_program",
                         f"nothing on central for program {program_id}" + (f" cohort {number}" if number else ""))
    return storage, data


def _paper_options(command):
    command = click.option("--province", default=None, help="Only people of this province code (e.g. 10).")(command)
    command = click.option("--cohort", "number", type=int, default=None, help="Cohort number (default: all).")(command)
    return click.option("--program", "program_id", required=True, help="Program id.")(command)


@main.command()
@_paper_options
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.pass_context
def report(ctx, program_id, number, province, fmt, out):
    """Writes the attendance report across venues: totals per session, day, role, area and
    target, and the participants × sessions grid.

    Example: kiosk-central report --program PROGRAM_ID --province 10 --format xlsx --out bangkok.xlsx
    """
    from kiosk.documents import papers

    _, data = _central_data(ctx, program_id, number, province)
    body, _mime = papers.report(data, fmt)
    write_atomically(out, body)
    click.echo(f"report in {out}")


@main.command()
@_paper_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PDF file to write.")
@click.pass_context
def certificates(ctx, program_id, number, province, out):
    """Prints the certificates of everyone the program's rule makes eligible, across venues.

    Example: kiosk-central certificates --program PROGRAM_ID --cohort 1 --out certificates.pdf
    """
    from kiosk.documents import papers
    from sync.central.reports import program_key

    storage, data = _central_data(ctx, program_id, number, province)
    count = papers.certificates(data, program_key(storage, program_id), out=out)
    click.echo(f"{count} certificates in {out}")


@main.command()
@_paper_options
@click.option("--rate", required=True, help="Baht per day attended.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PDF file to write.")
@click.pass_context
def allowances(ctx, program_id, number, province, rate, out):
    """Prints the allowance sheet (days attended × rate, amounts in Thai words) across venues.

    Example: kiosk-central allowances --program PROGRAM_ID --cohort 1 --rate 600 --out allowances.pdf
    """
    from kiosk.documents import papers
    from kiosk.reports.settings import parse_rate

    _, data = _central_data(ctx, program_id, number, province)
    sheet = papers.allowances(data, parse_rate(rate), out=out)
    click.echo(f"{len(sheet['rows'])} people, {sheet['days']} days, {sheet['total']:,.2f} baht in {out}")


if __name__ == "__main__":
    main()
