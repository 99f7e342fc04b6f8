"""The kiosk works when installed as a wheel: templates, static files and translations travel with it,
and building it (wheel or editable) prints no setuptools warnings."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Any warning setuptools (or pip, forwarding the backend's) prints, e.g. "Package would be ignored".
WARNING_MARKS = ("BuildBackendWarning", "SetuptoolsWarning", "SetuptoolsDeprecationWarning", "would be ignored",
                 "is absent from the `packages` configuration", "InformationOnly")


def test_wheel_carries_templates_static_and_translations_and_serves_pages(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True, text=True)
    noise = [mark for mark in WARNING_MARKS if mark in build.stdout + build.stderr]
    assert not noise, build.stderr
    wheel = next((tmp_path / "dist").glob("attendance_kiosk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("kiosk/templates/base.html", "kiosk/static/css/kiosk.css",
                     "kiosk/translations/th/LC_MESSAGES/messages.mo", "kiosk/cli/main.py", "sync/__init__.py",
                     "kiosk/templates/central/base.html", "kiosk/static/sounds/ok.wav", "kiosk/static/js/scan.js"):
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


def test_editable_build_raises_no_setuptools_warning(tmp_path):
    """What `pip install -e .` runs: the project's backend's build_editable, with every warning recorded."""
    script = (
        "import sys, warnings\n"
        "sys.path.insert(0, 'scripts')\n"
        "import build_backend\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    build_backend.build_editable(sys.argv[1])\n"
        "print('WARNINGS:', [f'{w.category.__name__}: {str(w.message)[:200]}' for w in seen])\n"
    )
    built = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNINGS: []" in built.stdout, built.stdout[-3000:]
    assert list(tmp_path.glob("attendance_kiosk-*.whl"))


def test_every_code_package_is_listed_for_the_wheel():
    import tomllib

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {str(p.parent.relative_to(root)).replace("/", ".") for folder in ("kiosk", "sync")
             for p in (root / folder).rglob("__init__.py")}
    assert found - listed == set()
