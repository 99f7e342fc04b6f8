"""The scan page as the server renders it, and the files it needs (script, style, sounds)."""

import io
import json
import re
import wave


def page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="scan-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_scan_page_needs_a_login(client):
    response = client.get("/scan")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_scan_page_offers_todays_sessions_and_a_scan_field(staff, open_event):
    event = open_event
    response = staff.get("/scan?lang=en")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="scan-code"' in html and 'id="people-q"' in html
    assert f'value="{event["session_id"]}"' in html
    data = page_data(html)
    [session] = data["sessions"]
    assert session["id"] == event["session_id"] and session["open"] is True and session["expected"] == 4
    assert set(data["sounds"]) == {"ok", "repeat", "error"}
    assert data["text"]["first_at"] == "First check-in at {time}"
    for asset in ("js/scan.js", "css/scan.css"):
        assert f"/static/{asset}" in html
        assert staff.get(f"/static/{asset}").status_code == 200


def test_scan_page_without_sessions_says_so(staff):
    html = staff.get("/scan?lang=en").get_data(as_text=True)
    assert "No session today." in html
    assert page_data(html)["sessions"] == []


def test_navigation_links_to_the_door(staff):
    assert 'href="/scan"' in staff.get("/").get_data(as_text=True)


def test_three_short_distinct_sounds(staff):
    page = page_data(staff.get("/scan").get_data(as_text=True))
    bodies = {}
    for name, url in page["sounds"].items():
        response = staff.get(url)
        assert response.status_code == 200
        with wave.open(io.BytesIO(response.data)) as sound:
            seconds = sound.getnframes() / sound.getframerate()
            assert sound.getnchannels() == 1 and 0.1 < seconds < 1.0, (name, seconds)
        bodies[name] = response.data
    assert len(set(bodies.values())) == 3


def test_the_page_right_after_switching_language_says_its_language(staff, app, db):
    from support import build_event, tablet_client

    event = build_event(db, open_now=True)
    assert '<html lang="en">' in staff.get("/scan?lang=en").get_data(as_text=True)
    assert '<html lang="th">' in staff.get("/scan?lang=th").get_data(as_text=True)
    tablet = tablet_client(app, db, event["cohort_id"])
    assert '<html lang="th">' in tablet.get("/register").get_data(as_text=True)
    assert '<html lang="en">' in tablet.get("/register?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in tablet.get("/register").get_data(as_text=True)  # remembered
