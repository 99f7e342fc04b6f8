"""The `kiosk` command: demo, event set-up, roster import, badges, accounts, serving."""

import sys
from pathlib import Path

import click

import sync
from kiosk.cli import documents, privacy
from kiosk.cli.context import Context, pass_ctx, progress
from kiosk.cli.kit import Group, fail, operator
from kiosk.ops import log
from kiosk.paths import FolderBusy, hold_folder
from kiosk.program import events
from kiosk.store.db import transaction
from kiosk.trust import accounts as auth
from kiosk.trust import programkeys


@click.group(cls=Group)
@click.option("--data", "folder", envvar="KIOSK_DATA", type=click.Path(file_okay=False),
              help="Data folder (database, keys, files). Default: KIOSK_DATA or a per-user folder.")
@click.version_option(package_name="attendance-kiosk")
@click.pass_context
def cli(ctx, folder):
    """Attendance kiosk for Thai training workshops: works at a venue with no internet.

    \b
    Example:
        kiosk demo && kiosk serve
    """
    ctx.obj = Context(folder)
    log.configure(ctx.obj.folder)


@cli.command()
@pass_ctx
def demo(ctx):
    """Create the demo event (Bangkok community-committee orientation) and a demo login.

    Cohort 1 (200 people from 8 districts) meets today and tomorrow; today's session takes
    check-ins at any hour, so the door works at once. Running it again (on any later day) keeps the
    event, moves its days to today again and gives the demo coordinator a new password.

    \b
    Example:
        kiosk --data ./demo-data demo
    """
    from kiosk.program.demo import create_demo

    update, finish = progress("Creating demo participants")
    result = create_demo(ctx.db, ctx.folder, progress=update)
    finish()
    click.echo(("Created" if result["created"] else "Kept") + " the demo program in " + str(ctx.folder))
    if result["moved_days"]:
        click.echo(f"Moved the demo's days by {result['moved_days']} days, so that cohort 1 meets today.")
    opens, closes = result["window"]
    click.echo(f"Cohort 1 meets today ({result['today']}, check-in open {opens}-{closes}) and tomorrow (07:00-17:00).")
    click.echo(f"Coordinator login: {result['username']} / {result['password']}")


@cli.group()
def program():
    """Programs (โครงการ)."""


@program.command("key")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@pass_ctx
def program_key(ctx, program_ref):
    """Print a program's key, for a kiosk that never sees a network.

    The key signs the program's badges and seals its USB bundles; it never travels in a bundle
    or the change log. Copy it onto paper, keep it apart from the USB stick, and type it in on
    the other kiosk with `kiosk import-bundle --program-key` or `kiosk program key-add`.

    \b
    Example:
        kiosk program key --program อบรมผู้นำ
    """
    found = events.find_program(ctx.db, program_ref)
    key = programkeys.key_of(ctx.db, found["id"])
    if key is None:
        raise programkeys.ProgramKeyError("program_key_missing", f"this kiosk holds no key of program {found['id']}")
    click.echo(f"{found['title']}  ({found['id']})")
    click.echo(programkeys.format_key(key))


@program.command("key-add")
@click.argument("key")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@pass_ctx
def program_key_add(ctx, key, program_ref):
    """Type in a program's key, printed by `kiosk program key` on a kiosk that has it.

    \b
    Example:
        kiosk program key-add ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567-ABCD-EFGH-IJKL-MNOP-QRST
    """
    found = events.find_program(ctx.db, program_ref)
    with transaction(ctx.db):
        added = programkeys.store(ctx.db, found["id"], programkeys.parse_key(key), via="typed in")
    click.echo("key kept" if added else "this kiosk holds that program's key already")


@program.command("add")
@click.argument("title")
@click.option("--organizer", default="", help="Organizing office.")
@click.option("--fiscal-year", type=int, help="Fiscal year, Buddhist era (e.g. 2570).")
@click.option("--min-percent", type=int, default=80, show_default=True, help="Attendance needed for a certificate.")
@pass_ctx
def program_add(ctx, title, organizer, fiscal_year, min_percent):
    """Create a program and print its id.

    \b
    Example:
        kiosk program add "อบรมผู้นำการเปลี่ยนแปลง" --organizer "สำนักงานพัฒนาชุมชนจังหวัด" --fiscal-year 2570
    """
    click.echo(events.create_program(ctx.db, title, organizer, fiscal_year, min_percent))


@program.command("list")
@pass_ctx
def program_list(ctx):
    """List programs with their cohorts.

    \b
    Example:
        kiosk program list
    """
    for p in events.programs(ctx.db):
        click.echo(f"{p['id']}  {p['title']}")
        for c in events.cohorts(ctx.db, p["id"]):
            click.echo(f"    cohort {c['number']:>3}  {c['starts_on']} – {c['ends_on']}")
            for s in events.sessions(ctx.db, c["id"]):
                click.echo(f"        session {s['id']}  {s['day']} {s['slot']}")


@cli.group()
def cohort():
    """Cohorts (รุ่น) and their session days."""


@cohort.command("add")
@click.argument("number", type=int)
@click.option("--program", "program_ref", help="Program id or title prefix (needed if several).")
@click.option("--start", "start", required=True, help="First day: 2026-11-21 or 21/11/2569.")
@click.option("--days", type=int, default=1, show_default=True, help="Number of session days.")
@click.option("--site", default="", help="Venue name (created if new).")
@pass_ctx
def cohort_add(ctx, number, program_ref, start, days, site):
    """Add a cohort with one session per day.

    \b
    Example:
        kiosk cohort add 1 --start 28/02/2562 --days 4 --site "โรงแรมปรินซ์พาเลซ"
    """
    found = events.find_program(ctx.db, program_ref)
    site_id = _site(ctx.db, found["id"], site) if site else None
    cohort_id = events.add_cohort(ctx.db, found["id"], number, events.parse_day(start), days, site_id)
    click.echo(cohort_id)


def _site(db, program_id: str, name: str) -> str:
    for s in events.sites(db, program_id):
        if s["name"] == name:
            return s["id"]
    return events.add_site(db, program_id, name)


@cohort.command("session")
@click.argument("number", type=int)
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--day", required=True, help="2026-11-21 or 21/11/2569.")
@click.option("--slot", type=click.Choice(["day", "morning", "afternoon"]), default="day", show_default=True)
@click.option("--opens", help="Check-in opens, HH:MM.")
@click.option("--closes", help="Check-in closes, HH:MM.")
@pass_ctx
def cohort_session(ctx, number, program_ref, day, slot, opens, closes):
    """Add a session (a day or a half-day slot) to a cohort.

    \b
    Example:
        kiosk cohort session 1 --day 2026-11-23 --slot morning --opens 07:30 --closes 12:00
    """
    found = events.find_program(ctx.db, program_ref)
    chosen = events.get_cohort(ctx.db, found["id"], number) or fail(events.EventError("unknown_cohort", f"no cohort {number}"))
    click.echo(events.add_session(ctx.db, chosen["id"], events.parse_day(day), slot, opens, closes))


@cli.command("target")
@click.argument("expected", type=int)
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--cohort", "number", type=int, help="Cohort number (default: the whole program).")
@click.option("--role", type=click.Choice(["participant", "speaker", "staff", "observer"]))
@click.option("--province", default="")
@click.option("--district", default="")
@click.option("--subdistrict", default="")
@pass_ctx
def target(ctx, expected, program_ref, number, role, province, district, subdistrict):
    """Set an expected head count (per cohort, role and/or area).

    \b
    Example:
        kiosk target 15 --cohort 1 --province "จ.ลำปาง" --district "อ.เมือง" --subdistrict "ต.พระบาท"
    """
    try:
        found = events.find_program(ctx.db, program_ref)
        cohort_id = events.get_cohort(ctx.db, found["id"], number)["id"] if number else None
        click.echo(events.add_target(ctx.db, found["id"], expected, cohort_id, role, province, district, subdistrict))
    except TypeError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command("import-roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--cohort", "number", type=int, required=True, help="Cohort number.")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--skip-bad", is_flag=True, help="Import the good rows even if some rows are bad.")
@pass_ctx
def import_roster_cmd(ctx, file, number, program_ref, skip_bad):
    """Import a roster (CSV in UTF-8 or cp874/TIS-620, or XLSX; Thai or English headers).

    Nothing is imported if any row is bad, unless --skip-bad. Importing the same file again
    changes nothing; an edited file updates the people it changed.

    \b
    Example:
        kiosk import-roster roster.xlsx --cohort 1
    """
    from kiosk.people.roster import import_roster

    found = events.find_program(ctx.db, program_ref)
    chosen = events.get_cohort(ctx.db, found["id"], number)
    if not chosen:
        raise events.EventError("unknown_cohort", f"no cohort {number} in {found['title']}")
    update, finish = progress("Importing")
    result = import_roster(ctx.db, Path(file).read_bytes(), found, chosen, file, skip_bad, update, by=operator())
    finish()
    for repair in result.repairs:
        click.echo(f"row {repair.row}: {repair.name}: phone {repair.before} read as {repair.after}")
    for problem in result.problems:
        who = f" ({problem.name})" if problem.name else ""
        click.echo(f"row {problem.row}: {problem.reason}: {problem.message}{who}", err=True)
    if not result.imported:
        raise click.ClickException(f"{len(result.problems)} bad rows; nothing imported")
    for move in result.moves:
        click.echo(f"row {move.row}: {move.name} moved from cohort {move.from_cohort} to cohort {number}")
    click.echo(f"added {result.added}, updated {result.updated}, unchanged {result.unchanged}")


@cli.command()
@click.option("--cohort", "number", type=int, required=True, help="Cohort number.")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--out", required=True, type=click.Path(), help="PDF file, or folder for --format png.")
@click.option("--format", "fmt", type=click.Choice(["pdf", "png"]), default="pdf", show_default=True)
@pass_ctx
def badges(ctx, number, program_ref, out, fmt):
    """Print a cohort's badges: A4 PDF sheets (8 a page, cut marks) or one PNG each.

    \b
    Example:
        kiosk badges --cohort 1 --out badges.pdf
    """
    from kiosk.badges.drawing import require_raqm, write_badge_pngs
    from kiosk.badges.issuing import cohort_cards, issue_missing_badges
    from kiosk.badges.pdf import badge_sheet_pdf

    require_raqm()
    found = events.find_program(ctx.db, program_ref)
    chosen = events.get_cohort(ctx.db, found["id"], number)
    if not chosen:
        raise events.EventError("unknown_cohort", f"no cohort {number}")
    issue_missing_badges(ctx.db, chosen["id"])
    cards = cohort_cards(ctx.db, chosen["id"])
    if fmt == "png":
        with click.progressbar(cards, label="Drawing badges", file=sys.stderr) as bar:
            paths = write_badge_pngs(bar, out)
        log.audit("badges-png", operator())
        click.echo(f"{len(paths)} badges in {out}")
        return
    update, finish = progress("Laying out badges")
    badge_sheet_pdf(cards, out, progress=update)
    finish()
    log.audit("badges-pdf", operator())
    click.echo(f"{len(cards)} badges in {out}")


@cli.group()
def user():
    """Staff accounts of this kiosk."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(auth.ROLES), required=True)
@click.password_option(help="Password (asked if not given).")
@pass_ctx
def user_add(ctx, name, role, password):
    """Create a coordinator or check-in staff account.

    \b
    Example:
        kiosk user add somchai --role staff
    """
    auth.add_user(ctx.db, name, role, password)
    click.echo(f"{role} {name} created")


@user.command("token")
@click.argument("name")
@pass_ctx
def user_token(ctx, name):
    """Make a new API token for an account (the old one stops working); printed once.

    \b
    Example:
        kiosk user token somchai
    """
    click.echo(auth.issue_token(ctx.db, name))


@user.command("password")
@click.argument("name")
@click.password_option(help="New password (asked if not given).")
@pass_ctx
def user_password(ctx, name, password):
    """Set a new password; every login of the account ends and its API token stops working,
    on a running server too.

    \b
    Example:
        kiosk user password somchai
    """
    auth.change_password(ctx.db, name, password)
    click.echo(f"password of {name} changed; its sessions and token ended")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Let the account log in again.")
@pass_ctx
def user_disable(ctx, name, enable):
    """Shut an account out (its logins end and its token stops, on a running server too), or
    let it back in with --enable.

    \b
    Example:
        kiosk user disable somchai
    """
    auth.set_disabled(ctx.db, name, not enable)
    click.echo(f"{name} {'enabled' if enable else 'disabled'}")


@cli.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--https", is_flag=True, help="Serve HTTPS with a local certificate (camera scanning on tablets).")
@pass_ctx
def serve(ctx, host, port, threads, https):
    """Serve the kiosk with waitress and print the addresses tablets should open.

    \b
    Example:
        kiosk serve --port 8080
    """
    from kiosk import create_app
    from kiosk.ops.serve import serve as serve_app
    from kiosk.ops.tls import lan_addresses

    try:
        lock = hold_folder(ctx.folder)  # held until the process ends: restore waits for a stopped kiosk
    except FolderBusy:
        raise click.ClickException(f"another kiosk already serves {ctx.folder}: stop it first, or give"
                                   " another --data folder") from None
    app = create_app({"DATA_DIR": str(ctx.folder), "HTTPS": https})
    app.config["SERVE_LOCK"] = lock
    code = auth.setup_code(ctx.db, ctx.folder)
    scheme = "https" if https else "http"
    click.echo(f"Attendance kiosk, data in {ctx.folder}")
    click.echo(f"  on this laptop:                      {scheme}://127.0.0.1:{port}/")
    for address in lan_addresses():
        click.echo(f"  on tablets and phones on its network: {scheme}://{address}:{port}/")
    if code:
        click.echo(f"First start: create the coordinator at /setup with the one-time code {code}")
    serve_app(app, host, port, threads, https)


@cli.command()
@click.option("--to", "folder", type=click.Path(file_okay=False), help="Folder for the backup (default: DATA/backups and the second folder chosen on the health page).")
@pass_ctx
def backup(ctx, folder):
    """Save a verified copy of the database now (safe while the kiosk serves).

    A backup outside the data folder (a USB stick) is sealed with this laptop's recovery key;
    the first time, the key is made and printed here, once: write it down or print it.

    \b
    Example:
        kiosk backup --to /media/usb/kiosk-backups
    """
    from kiosk.ops import backup as backups

    ctx.db  # migrated and identified before the copy
    if folder and not backups.recovery_key(ctx.folder) and not backups.inside_data_folder(folder, ctx.folder):
        _show_recovery_key(backups.make_recovery_key(ctx.folder), ctx.folder)
    for path in backups.take_backup(ctx.folder, to=folder):
        click.echo(f"backup saved: {path}")


@cli.command("recovery-key")
@click.option("--new", "new", is_flag=True, help="Make a new recovery key (backups sealed before keep needing the old one).")
@pass_ctx
def recovery_key(ctx, new):
    """Show which recovery key seals the backups that leave this laptop, or make a new one.

    The key's digits are printed once, when it is made: keep the paper apart from the USB stick.

    \b
    Example:
        kiosk recovery-key --new
    """
    from kiosk.ops import backup as backups

    if new:
        _show_recovery_key(backups.make_recovery_key(ctx.folder), ctx.folder)
        return
    found = backups.recovery_key(ctx.folder)
    if found is None:
        raise click.ClickException("no recovery key yet: make one with kiosk recovery-key --new")
    click.echo(f"recovery key ID {found['id']}, made {found['made_at']}")


def _show_recovery_key(digits: str, folder) -> None:
    from kiosk.ops import backup as backups

    found = backups.recovery_key(folder)
    click.echo("RECOVERY KEY for the backups this laptop seals (shown only this once):", err=True)
    click.echo(f"    {digits}", err=True)
    click.echo(f"    key ID {found['id']}", err=True)
    click.echo("Write it down or print it, and keep it apart from the USB stick: restoring a sealed backup "
               "(kiosk restore FILE --recovery-key KEY) needs it, and nobody can recover it.", err=True)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--recovery-key", "key", metavar="KEY", help="The printed recovery key, for a sealed backup (.db.sealed).")
@pass_ctx
def restore(ctx, file, key):
    """Put a backup in place of the database (stop `kiosk serve` first).

    A sealed backup (from a USB stick) needs the recovery key printed for it. The file is
    checked first, and a fresh database is built from its rows (anything else it
    holds, such as triggers, views or unknown tables, is dropped and named); the current database
    is kept in DATA/replaced/; the restored copy gets a new device id. Prints what the restored
    copy lacks compared with the current one.

    \b
    Example:
        kiosk restore ~/.local/share/attendance-kiosk/backups/kiosk-20261121T021500.000000Z.db
        kiosk restore /media/usb/attendance-kiosk-backups/kiosk-20261121T021500.000000Z.db.sealed \\
            --recovery-key 044759-443091-132748-145552-476157-510224-214335-314160
    """
    from kiosk.ops.backup import restore as restore_backup

    report = restore_backup(ctx.folder, file, key)  # a refused file ends the command in the one error format
    click.echo(f"restored {report.source}; new device id {report.device_id}")
    if report.dropped:
        click.echo(f"dropped from the backup, as no part of a kiosk database: {', '.join(report.dropped)}")
    if report.aside:
        click.echo(f"the database it replaced is kept in {report.aside}")
    if report.lacks_anything:
        missing = ", ".join(f"{n} {table}" for table, n in report.lacks.items() if n)
        click.echo(f"the restored copy lacks: {missing}. What was synced comes back at the next sync; "
                   f"the rest is only in {report.aside}.")
    else:
        click.echo("the restored copy lacks nothing the replaced database held")


@cli.command()
@pass_ctx
def doctor(ctx):
    """Check this laptop: database, disk space, Thai shaping and fonts, clock, backups, sync.

    Each line is in Thai, then English. Exits with status 1 if something needs attention now.

    \b
    Example:
        kiosk doctor
    """
    from kiosk.i18n import translations
    from kiosk.ops import health

    ctx.db  # a missing database is created and migrated, as serve would
    thai = translations("th")
    checks = health.run_checks(ctx.folder)
    for check in checks:
        mark = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}[check.status]
        click.echo(f"[{mark}] {thai.gettext(check.title)}: {thai.gettext(check.message) % check.values}")
        click.echo(f"       {check.title}: {check.message % check.values}")
    if health.overall(checks) == health.FAIL:
        raise SystemExit(1)


for command in (*documents.COMMANDS, *privacy.COMMANDS):
    cli.add_command(command)
sync.register(cli)


def main():
    cli(prog_name="kiosk")


if __name__ == "__main__":
    main()
