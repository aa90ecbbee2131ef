"""The README's examples are the files in examples/, and they pass as written."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_twistd import start_twistd, stop

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


@pytest.mark.parametrize("name", ["greeter.py", "test_greeter.py", "test_greeter_trial.py",
                                  "script.py"])
def test_readme_shows_the_example_files_exactly(name):
    """Each example file in the README is the file in examples/, byte for byte."""
    assert readme_blocks()[name] == (EXAMPLES / name).read_text()


def copy_examples(tmp_path):
    for name in ("greeter.py", "test_greeter.py", "test_greeter_trial.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)


def test_readme_pytest_example_passes(tmp_path):
    """`python -m pytest test_greeter.py` passes beside greeter.py (4 tests: 2 modes + 2)."""
    copy_examples(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pytest", "test_greeter.py", "-q",
                           "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_readme_trial_example_passes(tmp_path):
    """`python -m twisted.trial test_greeter_trial` passes beside greeter.py, on sockets and
    in memory, with the reactor left clean."""
    copy_examples(tmp_path)
    done = subprocess.run([sys.executable, "-m", "twisted.trial", "test_greeter_trial"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED (successes=2)" in done.stdout


def test_readme_script_example_asks_the_example_network(tmp_path):
    """`python script.py` prints 99 while the example network runs, finding the
    dispatcher through the connection file it wrote."""
    shutil.copytree(EXAMPLES, tmp_path, dirs_exist_ok=True)
    connection = tmp_path / "connection.json"
    config = tmp_path / "cluster.toml"
    config.write_text(config.read_text()
                      .replace('listen = ["tcp:5570:interface=127.0.0.1"]',
                               f'listen = ["tcp:0:interface=127.0.0.1"]\n'
                               f'connection_file = "{connection}"')
                      .replace("tcp:5571:", "tcp:0:"))
    network = start_twistd(config, tmp_path)
    try:
        network.output.wait_for("actor math-2 joined")
        done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=30,
                              env=dict(os.environ, ACTORNET_CONNECTION_FILE=str(connection)))
    finally:
        stop(network)
    assert (done.returncode, done.stdout) == (0, "99\n"), done.stderr
