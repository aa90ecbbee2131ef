"""The dashboard's page ships in the package: a real wheel, installed (not
editable), serves it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("actornet", "actors", "dispatcher", "protocols", "twisted", "setup.cfg",
           "pyproject.toml", "README.md")

pytestmark = pytest.mark.timeout(180)

PROBE = """
import json, sys
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest
import actornet
from actornet.dashboard.site import STATIC, Dashboard
from actornet.dispatcher.core import Dispatcher

root = Dashboard(Dispatcher(Clock()), Clock()).root()
page = root.getChildWithDefault(b"", DummyRequest([b""]))
print(json.dumps({"package": actornet.__file__, "static": str(STATIC),
                  "files": sorted(path.name for path in STATIC.iterdir()),
                  "index": page.path}))
"""


def test_a_non_editable_install_ships_the_page(tmp_path):
    """Built as a wheel and installed apart, the package finds index.html,
    dashboard.js and dashboard.css beside its own modules."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "wheel"),
                            str(source)], capture_output=True, text=True, timeout=150)
    assert built.returncode == 0, built.stderr
    wheel, = (tmp_path / "wheel").glob("actornet-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, env={"PYTHONPATH": str(site)})
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["package"]).is_relative_to(site)
    assert found["static"] == str(site / "actornet" / "dashboard" / "static")
    assert found["files"] == ["dashboard.css", "dashboard.js", "index.html"]
    assert found["index"] == str(site / "actornet" / "dashboard" / "static" / "index.html")
