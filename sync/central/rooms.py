"""One session followed in several rooms (a broadcast joined by video conference): each room's
count against the people it expects, live while the session runs.

A room is where a kiosk stands: central knows each enrolled device and a coordinator names its
room and the area whose people it expects (`Storage.set_room`). A person counts in the room whose
kiosk made their first check-in of the session; kiosks that are offline catch up when they sync,
and their people appear then. Rooms are never merged: two kiosks named alike are one room.
"""

from __future__ import annotations

import json

from sqlalchemy import and_, func, or_, select

from kiosk.reports.rows import area_name, percent
from kiosk.thai import thai_sort_key
from sync.central.storage.tables import attendance, device_origins, devices, participants, scans

NO_ROOM = "ไม่ระบุห้อง"


def live_rooms(storage, program_id: str, session: dict) -> dict:
    """Per room: present, expected (the session's cohort's people of the room's area), percent;
    and the people present whose kiosk has no room."""
    with storage.engine.connect() as conn:
        present = _present(conn, program_id, session["id"])
        rooms = _rooms(conn, program_id)
        areas = _people_by_area(conn, program_id, session["cohort_id"])
    names = sorted(set(rooms) | set(present), key=lambda n: (n == NO_ROOM, thai_sort_key(n)))
    rows = []
    for name in names:
        area = rooms.get(name)
        expected = sum(n for codes, n in areas.items() if area and area in codes) if area else None
        came = present.get(name, 0)
        rows.append({"room": name, "area": area, "area_name": area_name(area), "present": came,
                     "expected": expected, "percent": percent(came, expected or 0)})
    total = sum(areas.values())
    return {"session": session, "rooms": rows, "present": sum(present.values()), "expected": total,
            "percent": percent(sum(present.values()), total)}


def _present(conn, program_id: str, session_id: str) -> dict[str, int]:
    """People present per room: the room of the kiosk that made their first check-in."""
    room = func.coalesce(devices.c.room, devices.c.name, NO_ROOM)
    joined = (attendance.join(scans, and_(scans.c.program_id == attendance.c.program_id,
                                          scans.c.id == attendance.c.first_scan_id))
              .outerjoin(device_origins, device_origins.c.origin == scans.c.origin)
              .outerjoin(devices, devices.c.id == device_origins.c.device_id))
    rows = conn.execute(select(room, func.count()).select_from(joined).where(
        attendance.c.program_id == program_id, attendance.c.session_id == session_id).group_by(room))
    return {name: int(n) for name, n in rows}


def _rooms(conn, program_id: str) -> dict[str, str | None]:
    """Rooms of the devices that may sync the program: room name -> area code."""
    found = conn.execute(select(devices.c.room, devices.c.room_area, devices.c.programs).where(
        devices.c.room.is_not(None), devices.c.revoked_at.is_(None),
        or_(devices.c.programs.is_(None), devices.c.programs.contains(program_id))))
    return {room: area for room, area, allowed in found if not allowed or program_id in json.loads(allowed)}


def _people_by_area(conn, program_id: str, cohort_id: str) -> dict[tuple, int]:
    """The cohort's active people per (province, district, subdistrict) code."""
    p = participants
    rows = conn.execute(select(p.c.province_code, p.c.district_code, p.c.subdistrict_code, func.count()).where(
        p.c.program_id == program_id, p.c.cohort_id == cohort_id, p.c.status == "active", p.c.deleted.is_(None))
        .group_by(p.c.province_code, p.c.district_code, p.c.subdistrict_code))
    return {(a, b, c): int(n) for a, b, c, n in rows}
