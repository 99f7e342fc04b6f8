"""Every page of the kiosk, in Thai and in English, passes axe-core in real Chromium with no serious
or critical violation.

axe-core (MPL-2.0, from the npm registry) is vendored in tests/vendor/axe-core/ and injected by
Playwright as an init script (which the pages' CSP does not block); nothing is fetched at run time.
The walk enumerates the app's routes: a new page that no entry below covers fails
`test_the_walk_covers_every_page_of_the_app`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk import create_app
from kiosk.people import tablets
from kiosk.people.participants import register_participant
from kiosk.program import events
from kiosk.store.db import open_data_dir

from support import build_event, log_in

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

# GET routes that answer no HTML page (files, JSON, redirects): nothing for axe to read.
NOT_PAGES = {
    "static", "font", "ca_certificate", "api.ping", "api.sessions", "api.session_attendance",
    "api.search_participants", "sync_peer.api", "health.healthz", "register.areas", "register.service_worker",
    "register.badge_pdf", "register.pair", "register.pair_short", "admin.badges_pdf", "admin.participant_badge", "scan.badge_png",
    "reports.report_file", "reports.certificates_pdf", "reports.certificate_list", "reports.allowances_pdf",
    "reports.sheet_pdf", "sync_page.export_bundle", "admin.participant_record",
}
# Pages walked without a staff login (the login page itself, the public certificate check, a tablet).
PUBLIC = ("auth.login", "verify.verify", "verify.verify_code", "register.page")

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200))}));
}"""


def page_paths(ids: dict) -> dict[str, str]:
    """endpoint -> the path that shows it with content."""
    return {
        "admin.home": "/", "admin.program": f"/programs/{ids['program_id']}",
        "admin.cohort": f"/cohorts/{ids['cohort_id']}", "admin.participant": f"/participants/{ids['person_id']}",
        "admin.users": "/users", "register.tablets": f"/cohorts/{ids['cohort_id']}/tablets",
        "health.page": "/health", "health.log_page": "/health/log", "sync_page.index": "/sync/", "scan.page": "/scan",
        "reports.attendance": f"/reports/{ids['program_id']}", "reports.grid": f"/reports/{ids['program_id']}/grid",
        "reports.certificates": f"/reports/{ids['program_id']}/certificates",
        "reports.allowances": f"/reports/{ids['program_id']}/allowances",
        "reports.progress": f"/reports/{ids['program_id']}/progress",
        "auth.login": "/login", "auth.setup": "/setup", "verify.verify": "/verify",
        "verify.verify_code": "/verify/ABCDEFGH", "register.page": "/register",
    }


def test_the_walk_covers_every_page_of_the_app(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path), "TESTING": True})
    pages = {r.endpoint for r in app.url_map.iter_rules() if "GET" in r.methods} - NOT_PAGES
    covered = set(page_paths({"program_id": "p", "cohort_id": "c", "person_id": "x"}))
    assert pages - covered == set(), "add these pages to the axe walk (or to NOT_PAGES if they answer no HTML)"


def _prepare(data_dir) -> dict:
    """An event with people, attendance and a paired tablet, as a coordinator's day has them."""
    from kiosk.trust import accounts as auth

    db = open_data_dir(data_dir)
    try:
        event = build_event(db, open_now=True)
        auth.add_user(db, "chief", "coordinator", "password123")
        auth.add_user(db, "door", "staff", "password123")
        events.add_target(db, event["program_id"], 10, event["cohort_id"], "participant")
        cohort = events.cohort_by_id(db, event["cohort_id"])
        register_participant(db, cohort, {"first_name": "รอคิว", "last_name": "ทดสอบ"}, issue_badge=False,
                             via="walk_in", status="waiting")
        from kiosk.door.checkin import check_in

        check_in(db, event["people"][0]["code"])
        pairing = tablets.pair_tablet(db, event["cohort_id"], "หน้าห้อง")
        return {"program_id": event["program_id"], "cohort_id": event["cohort_id"],
                "person_id": event["people"][0]["id"], "pair_code": pairing["code"]}
    finally:
        db.close()


def _axe(page) -> list[dict]:
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # scripts that fill the page on load (counts, lists)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # the forms folded away too
    return page.evaluate(RUN_AXE)


def _walk(page, base: str, paths, lang: str, found: dict) -> None:
    for endpoint, path in paths:
        sep = "&" if "?" in path else "?"
        page.goto(f"{base}{path}{sep}lang={lang}")
        violations = _axe(page)
        if violations:
            found[f"{endpoint} {path} [{lang}]"] = violations


def _roster_result(page, base: str, ids: dict, lang: str, found: dict) -> None:
    """The result page of a roster with a bad row (a POST: reached through the form)."""
    page.goto(f"{base}/cohorts/{ids['cohort_id']}?lang={lang}")
    page.locator("form[action$='/roster']").evaluate("form => form.closest('details').open = true")
    csv = "ชื่อ,นามสกุล,โทรศัพท์\nสมใจ,ดีงาม,0812223333\nสมศรี,,12\n".encode()
    page.set_input_files("input[type=file][name=file]",
                         files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": csv}])
    page.locator("form[action$='/roster'] button[type=submit], form[action$='/roster'] button").first.click()
    page.wait_for_load_state("load")
    violations = _axe(page)
    if violations:
        found[f"roster result [{lang}]"] = violations


def _program_key(page, base: str, ids: dict, lang: str, found: dict) -> None:
    page.goto(f"{base}/programs/{ids['program_id']}?lang={lang}")
    page.locator(f"form[action$='/programs/{ids['program_id']}/key'] button").click()
    page.wait_for_load_state("load")
    violations = _axe(page)
    if violations:
        found[f"program key [{lang}]"] = violations


def _format(found: dict) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: {v['impact']} {v['id']} ({v['help']})")
            lines += [f"    {n}" for n in v["nodes"]]
    return "\n".join(lines)


pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["th", "en"])
def test_every_coordinator_and_door_page_passes_axe(data_dir, kiosk_server, chromium, lang):
    ids = _prepare(data_dir)
    server = kiosk_server()
    browser = chromium()
    paths = page_paths(ids)
    found: dict = {}

    staff = browser.new_context(viewport={"width": 1280, "height": 900})
    staff.add_init_script(path=str(AXE))
    page = staff.new_page()
    log_in(page, server, "chief", next_path="/", lang=lang)
    logged_in = [(e, p) for e, p in paths.items() if e not in PUBLIC and e != "auth.setup"]
    _walk(page, server.url, logged_in + [("error", "/no-such-page")], lang, found)
    _roster_result(page, server.url, ids, lang, found)
    _program_key(page, server.url, ids, lang, found)

    public = browser.new_context(viewport={"width": 390, "height": 844})
    public.add_init_script(path=str(AXE))
    page = public.new_page()
    _walk(page, server.url, [(e, paths[e]) for e in PUBLIC], lang, found)  # /register: not paired yet
    page.goto(f"{server.url}/r/{ids['pair_code'].replace('-', '')}?lang={lang}")
    page.wait_for_url("**/register")
    _walk(page, server.url, [("register.page (paired)", "/register")], lang, found)
    assert not found, "\n" + _format(found)


@pytest.mark.parametrize("lang", ["th", "en"])
def test_the_first_set_up_page_passes_axe(tmp_path, kiosk_server, chromium, lang):
    server = kiosk_server(tmp_path / "fresh")
    context = chromium().new_context()
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    found: dict = {}
    _walk(page, server.url, [("auth.setup", "/setup")], lang, found)
    assert not found, "\n" + _format(found)

