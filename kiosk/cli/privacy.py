"""`kiosk person record|erase` and `kiosk program retention`: what the privacy notice promises."""

import click

import sync
from kiosk.cli.context import pass_ctx
from kiosk.cli.kit import write_person_record
from kiosk.ops.retention import keep_retention
from kiosk.people import privacy
from kiosk.program import events


@click.group("person")
def person():
    """A person's own record, and erasing a person (PDPA)."""


@person.command("record")
@click.argument("ref", metavar="PERSON")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="FILE.pdf (Thai) or FILE.json.")
@pass_ctx
def record(ctx, ref, out):
    """Everything kept about a person (PERSON: an id, a badge code or a phone), as PDF or JSON.

    \b
    Example:
        kiosk person record 0812345678 --out record.pdf
    """
    found = privacy.find_person(ctx.db, ref)
    write_person_record(privacy.person_record(ctx.db, found["id"], sync.acknowledged(ctx.folder, found["program_id"])),
                        out)


@person.command("erase")
@click.argument("ref", metavar="PERSON")
@click.option("--reason", required=True, help="Why (for example: the person asked). No personal data.")
@click.option("--by", default="cli", help="Who asked for it to be done (your user name).")
@pass_ctx
def erase(ctx, ref, reason, by):
    """Erase a person's data on this kiosk now and, at the next sync, everywhere.

    \b
    Example:
        kiosk person erase 0812345678 --reason "asked at the desk"
    """
    found = privacy.find_person(ctx.db, ref)
    privacy.erase_person(ctx.db, found["id"], reason, by)
    click.echo(f"erased: {found['id']} (their attendance stays, without a name)")


@click.command("retention")
@click.argument("day", required=False)
@click.option("--program", "program_ref", help="Program id or title prefix.")
@click.option("--now", "keep_now", is_flag=True, help="Erase now the people of every program whose date has come.")
@pass_ctx
def retention(ctx, day, program_ref, keep_now):
    """Show when each program's people are erased, set an earlier date for one, or keep the dates now.

    \b
    Example:
        kiosk retention                 kiosk retention 2027-06-30 --program อบรม
    """
    if keep_now:
        click.echo(f"erased: {keep_retention(ctx.folder)} people")
        return
    if day:
        program = events.find_program(ctx.db, program_ref)
        click.echo(f"{program['title']}: erased on {privacy.set_retention(ctx.db, program, day)}")
        return
    for plan in privacy.retention_plan(ctx.db):
        click.echo(f"{plan['date'] or '-'}  {plan['people']:>6} people  {plan['title']}")


COMMANDS = (person, retention)
