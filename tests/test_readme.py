"""The README's examples are the files in examples/, and they pass as written."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.timeout(120)


def readme_blocks():
    """Every python block of the README, keyed by the file name in its first comment."""
    blocks = {}
    for block in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        first = block.splitlines()[0]
        if first.startswith("# ") and ".py" in first:
            blocks[first[2:].split(":")[0].strip()] = block
    return blocks


@pytest.mark.parametrize("name", ["greeter.py", "test_greeter.py", "test_greeter_trial.py"])
def test_readme_shows_the_example_files_exactly(name):
    """Each example file in the README is the file in examples/, byte for byte."""
    assert readme_blocks()[name] == (EXAMPLES / name).read_text()


def copy_examples(tmp_path):
    for name in ("greeter.py", "test_greeter.py", "test_greeter_trial.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)


def test_readme_pytest_example_passes(tmp_path):
    """`python -m pytest test_greeter.py` passes beside greeter.py (3 tests: 2 modes + 1)."""
    copy_examples(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pytest", "test_greeter.py", "-q",
                           "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_readme_trial_example_passes(tmp_path):
    """`python -m twisted.trial test_greeter_trial` passes beside greeter.py, on sockets and
    in memory, with the reactor left clean."""
    copy_examples(tmp_path)
    done = subprocess.run([sys.executable, "-m", "twisted.trial", "test_greeter_trial"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED (successes=2)" in done.stdout
