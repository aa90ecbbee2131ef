"""The dashboard in a real headless Chromium, against a real twistd network.

The example network runs in one ``twistd`` process (with a journal and short
keepalives) and one more actor in a second ``twistd`` that joins it, so that
actor can be frozen with SIGSTOP: the page must show it busy while it holds a
request and dead within its holdtime once frozen.  The README's JavaScript
example (examples/gateway.js) runs in the dashboard's page against the
network's WebSocket gateway.  Skipped only when Chromium
or its driver is missing (selenium is in the ``test`` extra).
"""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait
from test_twistd import BIN, EXAMPLES, example_on_free_ports, start_twistd, stop

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(f"the browser test needs Chromium and its driver ({CHROMIUM}, {CHROMEDRIVER}; "
                f"apt-get install chromium chromium-driver)", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

KEEPALIVE_INTERVAL = 0.3
KEEPALIVE_MULTIPLIER = 3
HOLDTIME = KEEPALIVE_INTERVAL * KEEPALIVE_MULTIPLIER
DEAD_WITHIN = HOLDTIME * 1.1 + 1.0
"""The sweep drops a silent peer within holdtime + 10 % of its last frame; one
second more lets the picture reach the page on a busy machine."""

LOCAL_ACTORS = ("keepalive", "files", "jobs", "inventory", "math-1", "math-2", "intake",
                "insurance", "provider")

HOLDER_MODULE = '''
from twisted.internet.defer import Deferred
from actornet import Actor, handler

class Holder(Actor):
    services = ("holder",)

    @handler
    def wait(self, bag):
        print("holding a request", flush=True)
        return Deferred()
'''

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1200,900")


@pytest.fixture
def network(tmp_path):
    """The example network (with a journal, on free ports) in one twistd and a
    ``holder-1`` actor joining it from a second; yields ``(url, worker, connection,
    gateway)``, the last the gateway's ``ws://`` address."""
    connection = tmp_path / "connection.json"
    config = example_on_free_ports(
        tmp_path, f'connection_file = "{connection}"\ntoken = "t0ken"\n'
                  f'journal = "{tmp_path / "journal.db"}"')
    text = config.read_text()
    text = text.replace("keepalive_interval = 2.0", f"keepalive_interval = {KEEPALIVE_INTERVAL}")
    text = text.replace("keepalive_multiplier = 3",
                        f"keepalive_multiplier = {KEEPALIVE_MULTIPLIER}")
    config.write_text(text)
    process = start_twistd(config, tmp_path)
    splash = process.output.wait_for("dashboard, metrics and status on http://")
    url = splash.split("status on ")[1].split(";")[0].strip()
    gateway = process.output.wait_for("WebSocket gateway on ").split(" on ")[1].split()[0]
    process.output.wait_for("actor provider joined")
    (tmp_path / "holder.py").write_text(HOLDER_MODULE)
    join = tmp_path / "join.toml"
    endpoint = json.loads(connection.read_text())["endpoint"]
    join.write_text(f'[join]\nconnect = "{endpoint}"\ntoken = "t0ken"\n\n'
                    '[[actor]]\nclass = "holder:Holder"\nname = "holder-1"\n')
    worker = start_twistd(join, tmp_path)
    process.output.wait_for("actor holder-1 joined")
    try:
        yield url, worker, connection, gateway
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGCONT)
            worker.kill()
        worker.wait()
        stop(process)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def read(driver, selector, value):
    """``{data-actor: value}`` of the elements matching ``selector``, read in one
    script (the page redraws every picture, so elements found earlier go stale)."""
    return driver.execute_script(
        "const found = {};"
        "for (const node of document.querySelectorAll(arguments[0]))"
        "  found[node.dataset.actor] = arguments[1] === 'status' ? node.dataset.status"
        "    : node.querySelector(arguments[1]).textContent;"
        "return found;", selector, value)


def statuses(driver):
    """``{actor: status}`` as the page's service tables show them."""
    return read(driver, "#services tr.actor", "status")


def wait_until(driver, condition, timeout, what):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: condition(d), message=f"{what} within {timeout} s; the page shows "
                                        f"{statuses(driver)}")


def test_the_dashboard_shows_the_live_star_and_a_frozen_actor_dies(network, browser, tmp_path):
    """Every actor appears alive; one holding a request is busy; frozen with
    SIGSTOP it turns dead within its holdtime; a bag's route is drawn."""
    url, worker, connection, _ = network
    browser.get(url)
    wait_until(browser, lambda d: d.execute_script(
        "return document.getElementById('connection').dataset.state") == "live", 10,
               "the event stream opened")
    everyone = {name: "alive" for name in (*LOCAL_ACTORS, "holder-1")}
    wait_until(browser, lambda d: statuses(d) == everyone, 10, "every actor alive")
    assert read(browser, "#star g.star-actor", "status") == everyone

    call = subprocess.Popen(
        [str(BIN / "actornet"), "call", "holder", "wait", "--timeout", "60",
         "--connection-file", str(connection)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        worker.output.wait_for("holding a request")
        wait_until(browser, lambda d: statuses(d)["holder-1"] == "busy", 5, "holder-1 busy")
        assert read(browser, "#services tr.actor", "td.in-flight")["holder-1"] == "1"

        worker.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        wait_until(browser, lambda d: statuses(d).get("holder-1") == "dead",
                   DEAD_WITHIN, "holder-1 dead")
        seen_dead_after = time.monotonic() - frozen_at
        _, err = call.communicate(timeout=10)
    finally:
        call.kill()
    print(f"\nthe page showed holder-1 dead {seen_dead_after * 1000:.0f} ms after SIGSTOP "
          f"(holdtime {HOLDTIME * 1000:.0f} ms)")
    assert "actor_lost" in err
    assert statuses(browser) == {**everyone, "holder-1": "dead"}
    assert "holder-1 died" in browser.execute_script(
        "return document.getElementById('events').textContent")

    browser.execute_script("document.getElementById('trace-refresh').click()")
    wait_until(browser, lambda d: d.execute_script(
        "const bag = document.querySelector('#trace-keys button[data-key]');"
        "if (bag) bag.click();"
        "return bag !== null;"), 5, "a bag listed")
    wait_until(browser, lambda d: d.execute_script(
        "const img = document.querySelector('#trace-view img');"
        "return img !== null && img.complete && img.naturalWidth > 0;"), 5, "a route drawn")

    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def gateway_example():
    """examples/gateway.js as a page would load it: its functions, without the
    commented usage lines."""
    return (EXAMPLES / "gateway.js").read_text()


def run_in_page(driver, script, *args):
    """Run ``script`` after the example's functions, in the page; it calls
    ``done(value)`` once, and an error ends it as ``{"error": message}``."""
    return driver.execute_async_script(
        gateway_example() + "\nconst done = arguments[arguments.length - 1];\n"
        "const args = arguments;\n"
        "(async () => { " + script + " })().catch((e) => done({error: e.message}));",
        *args)


def test_the_readme_javascript_calls_and_watches_through_the_gateway(network, browser):
    """From the dashboard's page (an origin the gateway allows by default),
    examples/gateway.js adds 50 and 49, gets the CLI's error line for an
    unknown service, is refused with a wrong token, and sees the death of an actor
    whose process is killed on ``actornet.actors``."""
    url, worker, connection, gateway = network
    browser.get(url)
    options = {"url": gateway, "token": "t0ken"}
    assert run_in_page(browser, "done(await call('math', 'add', {a: 50, b: 49}, args[0]));",
                       options) == {"result": 99}
    assert run_in_page(browser, "await call('nope', 'add', {}, args[0]); done('answered');",
                       options) == {
        "error": "actornet: unknown_service: no actor has ever served 'nope'"}
    assert run_in_page(browser, "done(await call('math', 'add', {}, {...args[0], "
                       "token: 'wrong'}));", options)["error"].startswith(
        "the gateway closed: 1006")

    browser.execute_script(
        gateway_example() + "window.deaths = [];"
        "watch('actornet.actors', (event) => { if (event.event === 'died') "
        "  window.deaths.push(event.name); }, arguments[0])"
        ".then(() => { window.watching = true; });", options)
    WebDriverWait(browser, 5, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.watching === true"),
        message="the subscription confirmed")
    worker.send_signal(signal.SIGKILL)
    WebDriverWait(browser, DEAD_WITHIN, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.deaths").count("holder-1") == 1,
        message="holder-1's death seen by the page's watch")
    wait_until(browser, lambda d: statuses(d).get("holder-1") == "dead", DEAD_WITHIN,
               "the killed holder-1 dead on the dashboard")
