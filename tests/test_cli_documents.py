"""`kiosk sheets`, `certificate-rule`, `certificates`, `allowances` and `report` on the seed cohort."""

import openpyxl
import pytest
from click.testing import CliRunner

from kiosk.cli.main import cli
from kiosk.store.db import open_data_dir

from scenarios import bangkok, bangkok_present


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "kiosk-data"
    db = open_data_dir(folder)
    scenario = bangkok(db)
    db.close()

    def invoke(*args):
        return CliRunner().invoke(cli, ["--data", str(folder), *args], catch_exceptions=False)
    invoke.scenario = scenario
    return invoke


def test_sheet_by_the_last_characters_of_the_session_id(run, tmp_path):
    session = run.scenario["sessions"][0]["id"]
    result = run("sheets", "--session", session[-12:], "--out", str(tmp_path / "s.pdf"))
    assert result.exit_code == 0 and (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    blank = run("sheets", "--session", session, "--blank", "--out", str(tmp_path / "b.pdf"))
    assert blank.exit_code == 0
    unknown = run("sheets", "--session", "nothing", "--out", str(tmp_path / "x.pdf"))
    assert unknown.exit_code == 1 and "[unknown_session]" in unknown.output


def test_rule_then_certificates_and_the_not_eligible_list(run, tmp_path):
    assert run("certificate-rule", "--kind", "all_sessions", "--signer-name", "นายก").exit_code == 0
    result = run("certificates", "--cohort", "1", "--out", str(tmp_path / "c.pdf"),
                 "--not-eligible", str(tmp_path / "n.csv"))
    both = sum(bangkok_present(i, 0) and bangkok_present(i, 1) for i in range(180))
    assert result.exit_code == 0 and f"{both} certificates" in result.output
    assert (tmp_path / "n.csv").read_text(encoding="utf-8-sig").count("ไม่ได้รับ") == 180 - both


def test_allowances_and_report(run, tmp_path):
    result = run("allowances", "--cohort", "1", "--rate", "600", "--out", str(tmp_path / "a.pdf"))
    days = sum(bangkok_present(i, d) for i in range(180) for d in (0, 1))
    assert result.exit_code == 0 and f"{days} days, {600 * days:,.2f} baht" in result.output
    assert run("allowances", "--cohort", "1", "--rate", "-5", "--out", str(tmp_path / "a.pdf")).exit_code == 1
    assert run("report", "--cohort", "1", "--format", "xlsx", "--out", str(tmp_path / "r.xlsx")).exit_code == 0
    assert len(list(openpyxl.load_workbook(tmp_path / "r.xlsx")["รายบุคคล"].iter_rows())) == 201
