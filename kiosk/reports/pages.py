"""What the report pages show, from a `Dataset`: the same on the kiosk and on the central server."""

from __future__ import annotations

from kiosk.reports import attendance as att
from kiosk.reports.certificates import eligibility, parse_rule
from kiosk.reports.charts import bar_chart
from kiosk.reports.export import local_time_text, session_label
from kiosk.reports.rows import AREA_LEVELS, Dataset, area_name
from kiosk.reports.settings import progress_percent, progress_rows


def attendance_page(data: Dataset, level: str | None = None) -> dict:
    """Totals, per session / day / role / area (at `level`, default the report's own) / target, the
    corrections made by hand, and two charts."""
    level = level if level in AREA_LEVELS else att.default_level(data)
    sessions = att.by_session(data)
    labels = {s["id"]: session_label(s) for s in data.sessions}
    areas = att.by_area(data, level)
    return {
        "totals": att.totals(data), "sessions": [{**r, "label": labels[r["session_id"]]} for r in sessions],
        "days": att.by_day(data), "roles": att.by_role(data), "areas": areas, "area_level": level,
        "area_levels": AREA_LEVELS, "targets": att.against_targets(data),
        "corrections": [{**c, "when": local_time_text(c.get("at"))} for c in att.corrections(data)],
        "session_chart": bar_chart([(labels[r["session_id"]], r["present"], r["expected"]) for r in sessions
                                    if not r["upcoming"]],
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
