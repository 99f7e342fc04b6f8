"""The kiosk works when installed as a wheel: templates, static files and translations travel with it."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_templates_static_and_translations_and_serves_pages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("attendance_kiosk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("kiosk/templates/base.html", "kiosk/static/css/kiosk.css",
                     "kiosk/translations/th/LC_MESSAGES/messages.mo", "kiosk/cli.py", "sync/__init__.py"):
        assert expected in names, expected
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import kiosk, sys; assert kiosk.__file__.startswith(sys.argv[1]), kiosk.__file__\n"
        "app = kiosk.create_app({'DATA_DIR': sys.argv[2]})\n"
        "page = app.test_client().get('/setup')\n"
        "assert page.status_code == 200 and 'ตั้งค่า' in page.get_data(as_text=True), page.status_code\n"
        "assert app.test_client().get('/static/css/kiosk.css').status_code == 200\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script, str(site), str(tmp_path / "data")], check=True, cwd=tmp_path,
                   env=env)
