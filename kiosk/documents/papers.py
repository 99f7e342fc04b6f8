"""The office's papers from a `Dataset`, the same way on a kiosk and on the central server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kiosk.documents.allowances import allowance_pdf
from kiosk.documents.certificates import certificates_pdf
from kiosk.documents.sheets import signature_sheet_pdf
from kiosk.reports.certificates import allowance_rows, eligibility, eligible, parse_rule
from kiosk.reports.export import certificate_table, export, grid_table, report_tables
from kiosk.reports.rows import Dataset


def certificates(data: Dataset, key: bytes, out: str | os.PathLike) -> int:
    """Writes the certificates of everyone eligible under the program's rule; returns how many."""
    rule = parse_rule(data.program.get("certificate_rule"))
    rows = eligible(data, rule)
    certificates_pdf(data, rows, rule, key, out)
    return len(rows)


def allowances(data: Dataset, rate, out: str | os.PathLike) -> dict:
    """Writes the allowance sheet at `rate` baht a day; returns its totals."""
    sheet = allowance_rows(data, rate)
    allowance_pdf(data, sheet, out)
    return sheet


def sheet(data: Dataset, session: dict, key: bytes | None, out: str | os.PathLike, blank: bool = False) -> Path:
    """Writes a session's signature sheet (`blank`: walk-in rows only)."""
    return signature_sheet_pdf(data, session, out, key, blank=blank)


def report(data: Dataset, fmt: str, level: str | None = None) -> tuple[bytes, str]:
    """The attendance report as CSV or XLSX: totals, per session/day/role/area (at `level`)/target,
    corrections by hand, the grid."""
    return export([*report_tables(data, level), grid_table(data)], fmt)


def certificate_list(data: Dataset, fmt: str) -> tuple[bytes, str]:
    """Who earns a certificate, who does not and why, as CSV or XLSX."""
    rule = parse_rule(data.program.get("certificate_rule"))
    return export([certificate_table(eligibility(data, rule))], fmt)


def pdf_bytes(make, *args, **kwargs) -> bytes:
    """Runs a PDF writer taking an output path and returns the file's bytes (for downloads)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.pdf"
        make(*args, out=path, **kwargs)
        return path.read_bytes()
