"""Every page of the central server, in Thai and in English, passes axe-core in real Chromium with
no serious or critical violation, and reads on a 390 px wide phone without scrolling sideways.

The kiosk's pages are checked in tests/test_accessibility.py; this is the same walk over a real
`kiosk-central serve` holding three programs synced from a kiosk (Bangkok's cohort with its
districts, the national course over all 77 provinces, a day of corrections down to subdistricts),
with an enrolled device in a named room, a revoked one, an allowance rate and a progress entry.
axe-core is the vendored copy (tests/vendor/axe-core/), injected as an init script; nothing is
fetched at run time. The walk enumerates the app's routes: a new page that no entry below covers
fails `test_the_walk_covers_every_page_of_central`.
"""

from __future__ import annotations

import pytest
from test_accessibility import AXE, RUN_AXE, _format

from kiosk.badges.codes import certificate_code
from kiosk.reports.settings import kiosk_writer, save_progress_entry, set_allowance_rate
from sync.central import create_app
from sync.client import sync_once

from scenarios import bangkok, corrections_day, national
from support import Kiosk, enrol

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# GET routes that answer no HTML page: files, JSON, the devices' signed API.
NOT_PAGES = {
    "static", "font", "central_sync.api", "national.table", "national.people", "national.live_json",
    "central_reports.report_file", "central_reports.certificates_pdf", "central_reports.certificate_list",
    "central_reports.allowances_pdf",
}
# Pages walked without a login (the login page, the public certificate check); the first set-up
# page has its own test, on a central server with no account yet.
PUBLIC = ("central.login", "central_verify.verify", "central_verify.verify_code")
SETUP = "central.setup"


def page_paths(ids: dict) -> dict[str, list[str]]:
    """endpoint -> the paths that show it with content (a page with several states, each)."""
    bkk, nat, corr = ids["bangkok"], ids["national"], ids["corrections"]
    return {
        "central.index": ["/"],
        "central.devices": ["/devices"],
        "central.enrol": ["/enrol"],  # and the page with a fresh code: `_enrol_code`
        "central_reports.index": ["/reports/"],
        "central_reports.attendance": [f"/reports/{bkk}", f"/reports/{nat}?cohort=1&province=10",
                                       f"/reports/{corr}?level=subdistrict"],
        "central_reports.grid": [f"/reports/{bkk}/grid", f"/reports/{corr}/grid"],
        "central_reports.certificates": [f"/reports/{nat}/certificates", f"/reports/{bkk}/certificates"],
        "central_reports.allowances": [f"/reports/{bkk}/allowances", f"/reports/{nat}/allowances"],
        "central_reports.progress": [f"/reports/{bkk}/progress", f"/reports/{nat}/progress"],
        # national -> province -> district -> subdistrict, the tile map, a cohort and one session
        "national.program": [f"/national/{nat}", f"/national/{bkk}", f"/national/{bkk}?area=10",
                             f"/national/{bkk}?area=1026&cohort=1",
                             f"/national/{bkk}?cohort=1&session={ids['bangkok_session']}&role=participant",
                             f"/national/{corr}?area=1002", f"/national/{corr}?area=100201"],
        "national.live": [f"/live/{bkk}/{ids['bangkok_session']}", f"/live/{corr}/{ids['corrections_session']}"],
        "central_verify.verify": ["/verify"],
        "central_verify.verify_code": [f"/verify/{ids['certificate']}", "/verify/ABCDEFGH"],
        "central.login": ["/login"],
        SETUP: ["/setup"],
    }


NO_IDS = dict.fromkeys(("bangkok", "national", "corrections", "bangkok_session", "corrections_session",
                        "certificate"), "x")


def test_the_walk_covers_every_page_of_central(tmp_path):
    app = create_app({"CENTRAL_DATA": str(tmp_path / "central")})
    pages = {r.endpoint for r in app.url_map.iter_rules() if "GET" in r.methods} - NOT_PAGES
    walked = page_paths(NO_IDS)
    assert pages - set(walked) == set(), "add these pages to the walk (or to NOT_PAGES if they answer no HTML)"
    assert set(walked) - pages == set(), "these endpoints are gone from central"


def _prepare(tmp_path, server) -> dict:
    """Three programs on a kiosk, synced to `server`; a coordinator, rooms, settings made there."""
    kiosk = Kiosk(tmp_path / "venue")
    try:
        made = {"bangkok": bangkok(kiosk.db), "national": national(kiosk.db), "corrections": corrections_day(kiosk.db)}
        write = kiosk_writer(kiosk.db)
        set_allowance_rate(write, made["bangkok"]["program_id"], "240")
        save_progress_entry(write, made["bangkok"]["program_id"], None, "2569-11", "ผู้เข้าอบรมเดินทางไกล",
                            "งบประมาณล่าช้า", "office")
        storage = server.storage()
        try:
            storage.add_user("office", "password123")
            device = enrol(kiosk, server.url, storage)["device_id"]
            sync_once(kiosk.data_dir)
            storage.set_room(device, "ห้องประชุม สนง.พมจ.กรุงเทพมหานคร", "10")
            spare = storage.enrol(storage.create_enrol_code("เครื่องสำรอง"))["device_id"]
            storage.revoke(spare)
        finally:
            storage.close()
        nat = made["national"]
        return {"bangkok": made["bangkok"]["program_id"], "national": nat["program_id"],
                "corrections": made["corrections"]["program_id"],
                "bangkok_session": made["bangkok"]["sessions"][0]["id"],
                "corrections_session": made["corrections"]["tomorrow"]["id"],
                "certificate": certificate_code(nat["program_id"], nat["people"][1]["id"], nat["key"])}
    finally:
        kiosk.close()


def _check(page, where: str, lang: str, found: dict, wide: list) -> None:
    """axe at 1280 px, then at 390 px: no serious or critical violation, and no sideways scroll on the phone."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # scripts that fill the page on load (the live counts)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    declared = page.evaluate("document.documentElement.lang")
    if declared != lang:
        found[where] = [{"id": "html-lang", "impact": "serious", "help": f"<html lang> is {declared!r}",
                         "nodes": ["html"]}]
    violations = page.evaluate(RUN_AXE)
    if violations:
        found.setdefault(where, []).extend(violations)
    page.set_viewport_size(PHONE)  # the phone's layout (its media queries) is checked by axe too
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        wide.append(f"{where}: {width}px wide at {PHONE['width']}px, widest: " + page.evaluate(WIDEST))
    violations = page.evaluate(RUN_AXE)
    if violations:
        found[f"{where} at {PHONE['width']}px"] = violations
    page.set_viewport_size(DESKTOP)


# The elements that reach furthest right, to name in a failure.
WIDEST = """() => {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 0.5) out.push([r.right, el]);
  }
  out.sort((a, b) => b[0] - a[0]);
  return out.slice(0, 4).map(([right, el]) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
    `${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : ''}` +
    ` (${Math.round(right)}px)`).join(', ');
}"""


def _walk(page, base: str, paths, lang: str, found: dict, wide: list) -> None:
    for endpoint, path in paths:
        sep = "&" if "?" in path else "?"
        page.goto(f"{base}{path}{sep}lang={lang}")
        _check(page, f"{endpoint} {path} [{lang}]", lang, found, wide)


def _log_in(page, base: str, lang: str) -> None:
    page.goto(f"{base}/login?next=/&lang={lang}")
    page.fill("input[name=username]", "office")
    page.fill("input[name=password]", "password123")
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{base}/")


def _enrol_code(page, base: str, lang: str, found: dict, wide: list) -> None:
    """The page with a new one-time code and its QR (a POST: reached through the form)."""
    page.goto(f"{base}/enrol?lang={lang}")
    page.fill("input[name=name]", "ห้องประชุม 2")
    page.press("input[name=name]", "Enter")
    page.wait_for_selector(".code")
    _check(page, f"central.enrol (a new code) [{lang}]", lang, found, wide)


def _report(found: dict, wide: list) -> str:
    return "\n" + _format(found) + ("\n" if found and wide else "") + "\n".join(wide)


pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["th", "en"])
def test_every_central_page_passes_axe_and_fits_a_phone(tmp_path, central_server, chromium, lang):
    server = central_server()
    ids = _prepare(tmp_path, server)
    paths = page_paths(ids)
    found: dict = {}
    wide: list = []
    context = chromium().new_context(viewport=DESKTOP)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    _walk(page, server.url, [(e, p) for e in PUBLIC for p in paths[e]], lang, found, wide)
    _log_in(page, server.url, lang)
    logged_in = [(e, p) for e, ps in paths.items() if e not in PUBLIC and e != SETUP for p in ps]
    _walk(page, server.url, logged_in + [("error", "/no-such-page")], lang, found, wide)
    _enrol_code(page, server.url, lang, found, wide)
    assert not found and not wide, _report(found, wide)


@pytest.mark.parametrize("lang", ["th", "en"])
def test_the_first_set_up_page_of_central_passes_axe(tmp_path, central_server, chromium, lang):
    server = central_server()  # no account yet: every page leads to /setup
    context = chromium().new_context(viewport=DESKTOP)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    found: dict = {}
    wide: list = []
    _walk(page, server.url, [(SETUP, p) for p in page_paths(NO_IDS)[SETUP]], lang, found, wide)
    assert not found and not wide, _report(found, wide)
