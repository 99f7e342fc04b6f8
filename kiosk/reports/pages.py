"""What the report pages show: the same on the kiosk and on the central server. The attendance page\nfrom the database's counts (`kiosk.reports.aggregates`), the others from a `Dataset`."""

from __future__ import annotations

from kiosk.reports import attendance as att
from kiosk.reports.certificates import eligibility, parse_rule
from kiosk.reports.charts import bar_chart
from kiosk.reports.export import local_time_text, session_label
from kiosk.reports.rows import AREA_LEVELS, Dataset
from kiosk.reports.settings import progress_percent, progress_rows


def attendance_page(found: dict) -> dict:
    """The attendance page from `aggregates.summary` (counted by the database): its numbers, the
    session labels, the area levels to choose from, the corrections' local times, and two charts."""
    labels = {s["id"]: session_label(s) for s in found["session_rows"]}
    sessions = [{**r, "label": labels[r["session_id"]]} for r in found["sessions"]]
    areas = found["areas"]
    return {
        **found, "sessions": sessions, "area_levels": AREA_LEVELS,
        "corrections": [{**c, "when": local_time_text(c.get("at"))} for c in found["corrections"]],
        "session_chart": bar_chart([(r["label"], r["present"], r["expected"]) for r in sessions if not r["upcoming"]],
                                   "ผู้มาในแต่ละช่วง เทียบผู้ลงทะเบียน / Attendance per session, of those registered"),
        "area_chart": bar_chart([(r["area"], r["attended"], r["target"] or r["registered"]) for r in areas],
                                "ผู้มาตามพื้นที่ / Attendance per area"),
    }


def grid_page(data: Dataset) -> dict:
    return att.grid(data)


def certificate_page(data: Dataset) -> dict:
    """The rule, who is eligible, and who is not with the sessions they missed."""
    rule = parse_rule(data.program.get("certificate_rule"))
    rows = eligibility(data, rule)
    for r in rows:
        r["missing_labels"] = [session_label(s) for s in r["missing"]]
    return {"rule": rule, "eligible": [r for r in rows if r["eligible"]],
            "not_eligible": [r for r in rows if not r["eligible"]]}


def progress_page(data: Dataset) -> dict:
    return {"entries": progress_rows(data, data.progress), "now": progress_percent(data, "")}
