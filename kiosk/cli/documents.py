"""`kiosk sheets`, `certificates`, `certificate-rule`, `allowances`, `report`: the office's papers.

Domain errors end a command through the group (kiosk.cli.kit), in the one CLI format; the
`kiosk` group (kiosk.cli.main) adds COMMANDS.
"""

import click

from kiosk.cli.context import pass_ctx
from kiosk.cli.kit import operator
from kiosk.ops import log
from kiosk.paths import write_atomically
from kiosk.program import events
from kiosk.trust.programkeys import badge_key


def _cohort(db, program_ref, number):
    """(program, cohort) for --program and --cohort."""
    program = events.find_program(db, program_ref)
    cohort = events.get_cohort(db, program["id"], number)
    if not cohort:
        raise events.EventError("unknown_cohort", f"no cohort {number}")
    return program, cohort


def _dataset(db, program_ref, number):
    from kiosk.reports.sources import kiosk_dataset

    program, cohort = _cohort(db, program_ref, number)
    return program, kiosk_dataset(db, program["id"], cohort["id"])


def _session(db, program: dict, ref: str) -> dict:
    """A session by id, or the first or last characters of its id, within the program."""
    found = [s for s in db.query("select * from sessions where program_id = ? and (id like ? or id like ?)",
                                 [program["id"], ref + "%", "%" + ref])]
    if len(found) != 1:
        raise events.EventError("unknown_session", f"no single session of this program matches {ref!r}")
    return found[0]


@click.command()
@click.option("--session", "session_ref", required=True, help="Session id (or its first characters).")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PDF file to write.")
@click.option("--blank", is_flag=True, help="Only blank rows, for walk-ins.")
@pass_ctx
def sheets(ctx, session_ref, program_ref, out, blank):
    """Print a session's signature sheet (ใบลงลายมือชื่อ), grouped by area, with row QR codes.

    Printed before the day it is empty; after, it shows check-in times. `kiosk program list`
    shows the session ids; the last characters are enough.

    \b
    Example:
        kiosk sheets --session c22d768834a7 --out sheet-day1.pdf
    """
    from kiosk.documents import papers
    from kiosk.reports.sources import kiosk_dataset

    program = events.find_program(ctx.db, program_ref)
    session = _session(ctx.db, program, session_ref)
    data = kiosk_dataset(ctx.db, program["id"], session["cohort_id"])
    papers.sheet(data, session, badge_key(ctx.db, program["id"]), out=out, blank=blank)
    log.audit("sheet", operator())
    click.echo(f"signature sheet in {out}")


@click.command("certificate-rule")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--kind", type=click.Choice(["all_sessions", "percent", "all_days"]), required=True)
@click.option("--min-percent", type=int, default=80, show_default=True, help="For --kind percent.")
@click.option("--signer-name", default="", help="Who signs the certificates.")
@click.option("--signer-position", default="", help="The signer's position.")
@click.option("--thai-digits", is_flag=True, help="Write numbers on certificates in Thai digits.")
@click.option("--verify-url", default="", help="The central server's public address: the QR becomes a link to its check.")
@pass_ctx
def certificate_rule(ctx, program_ref, kind, min_percent, signer_name, signer_position, thai_digits, verify_url):
    """Set who earns a certificate and who signs it.

    \b
    Example:
        kiosk certificate-rule --kind percent --min-percent 80 --signer-name "นายสมศักดิ์ ใจดี" \\
            --signer-position "ผู้อำนวยการกองส่งเสริม" --verify-url https://central.example.go.th
    """
    from kiosk.reports.certificates import make_rule
    from kiosk.reports.settings import kiosk_writer, set_certificate_rule

    program = events.find_program(ctx.db, program_ref)
    rule = make_rule(kind, min_percent, signer_name, signer_position, thai_digits, verify_url)
    set_certificate_rule(kiosk_writer(ctx.db), program["id"], rule)
    click.echo(f"certificate rule: {rule.to_json()}")


@click.command()
@click.option("--cohort", "number", type=int, required=True, help="Cohort number.")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PDF file to write.")
@click.option("--not-eligible", "not_eligible", type=click.Path(dir_okay=False),
              help="Also write who is not eligible and why (CSV).")
@pass_ctx
def certificates(ctx, number, program_ref, out, not_eligible):
    """Print the certificates (A4 landscape) of everyone the program's rule makes eligible.

    \b
    Example:
        kiosk certificates --cohort 1 --out certificates.pdf --not-eligible missing.csv
    """
    from kiosk.documents import papers

    program, data = _dataset(ctx.db, program_ref, number)
    count = papers.certificates(data, badge_key(ctx.db, program["id"]), out=out)
    if not_eligible:
        write_atomically(not_eligible, papers.certificate_list(data, "csv")[0])
    log.audit("certificates", operator())
    click.echo(f"{count} certificates in {out}")


@click.command()
@click.option("--cohort", "number", type=int, required=True, help="Cohort number.")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--rate", required=True, help="Baht per day attended.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PDF file to write.")
@pass_ctx
def allowances(ctx, number, program_ref, rate, out):
    """Print the allowance sheet: days attended × the rate, in figures and Thai words.

    \b
    Example:
        kiosk allowances --cohort 1 --rate 600 --out allowances.pdf
    """
    from kiosk.documents import papers
    from kiosk.reports.settings import kiosk_writer, set_allowance_rate

    program, data = _dataset(ctx.db, program_ref, number)
    amount = set_allowance_rate(kiosk_writer(ctx.db), program["id"], rate)
    sheet = papers.allowances(data, amount, out=out)
    log.audit("allowances", operator())
    click.echo(f"{len(sheet['rows'])} people, {sheet['days']} days, {sheet['total']:,.2f} baht in {out}")


@click.command()
@click.option("--cohort", "number", type=int, required=True, help="Cohort number.")
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@pass_ctx
def report(ctx, number, program_ref, fmt, out):
    """Write the attendance report: totals per session, day, role, area and target, and the
    participants × sessions grid (one row per person).

    \b
    Example:
        kiosk report --cohort 1 --format xlsx --out cohort1.xlsx
    """
    from kiosk.documents import papers

    _, data = _dataset(ctx.db, program_ref, number)
    body, _mime = papers.report(data, fmt)
    write_atomically(out, body)
    log.audit("report", operator())
    click.echo(f"report in {out}")


COMMANDS = (sheets, certificate_rule, certificates, allowances, report)
