"""The build backend: setuptools' own, without its information-only note on editable installs.

static/, templates/ and translations/ sit at the top of the repository and are mapped into the
kiosk package (pyproject.toml), so `pip install -e .` is served by setuptools' import finder,
and setuptools then warns that a folder named like a package might shadow it. That note is of
the `InformationOnly` kind and holds nothing to act on; a new user reads it as breakage.
Every other setuptools warning still shows (tests/test_packaging.py builds with none).
"""

import warnings

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F401,F403  (the whole PEP 517/660 interface)
from setuptools.warnings import InformationOnly


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """setuptools' editable build, minus its InformationOnly warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InformationOnly)
        return build_meta.build_editable(wheel_directory, config_settings, metadata_directory)
