"""The README's examples are the files in examples/, and they pass as written."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from test_twistd import example_on_free_ports, start_twistd, stop

from actornet.testing import Cluster

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
                                  "script.py", "test_incident.py", "consul_hook.py",
                                  "gateway_client.py"])
def test_readme_shows_the_example_files_exactly(name):
    """Each example file in the README is the file in examples/, byte for byte."""
    assert readme_blocks()[name] == (EXAMPLES / name).read_text()


def test_readme_shows_the_javascript_gateway_example_exactly():
    """The README's JavaScript block is examples/gateway.js, which the browser test
    runs in a real page (tests/test_dashboard_browser.py)."""
    blocks = re.findall(r"```javascript\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks == [(EXAMPLES / "gateway.js").read_text()]


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
    connection = tmp_path / "connection.json"
    config = example_on_free_ports(tmp_path, f'connection_file = "{connection}"')
    network = start_twistd(config, tmp_path)
    try:
        network.output.wait_for("actor math-2 joined")
        done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=30,
                              env=dict(os.environ, ACTORNET_CONNECTION_FILE=str(connection)))
    finally:
        stop(network)
    assert (done.returncode, done.stdout) == (0, "99\n"), done.stderr


async def record_incident(path, greeter):
    """A greeter network's traffic, journaled to ``path`` as production would."""
    cluster = await Cluster(mode="memory", journal=str(path)).start()
    try:
        await cluster.add(greeter)
        client = await cluster.client("shop")
        await client.ask("greet", "hello", {"name": "ada"})
        await cluster.advance(30)
        await client.ask("greet", "shout", {"name": "bob"})
    finally:
        await cluster.stop()


def run_incident_test(folder):
    return subprocess.run([sys.executable, "-m", "pytest", "test_incident.py", "-q",
                           "-p", "no:cacheprovider"], cwd=folder, capture_output=True,
                          text=True, timeout=100)


@pytest_twisted.ensureDeferred
async def test_readme_replay_example_passes_and_names_a_changed_answer(tmp_path, monkeypatch):
    """test_incident.py passes against the greeter that recorded incident.db, and a
    changed greeter fails it, naming the request whose answer changed."""
    for name in ("greeter.py", "test_incident.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from greeter import Greeter
    await record_incident(tmp_path / "incident.db", Greeter("greeter-1"))
    done = run_incident_test(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    greeter = tmp_path / "greeter.py"
    greeter.write_text(greeter.read_text().replace(".upper()", ".title()"))
    done = run_incident_test(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "method='shout'" in done.stdout and "HELLO, BOB" in done.stdout
    assert "Hello, Bob" in done.stdout
