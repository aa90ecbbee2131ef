"""NorFab and Crossbar.io for comparison, each in a virtualenv of its own.

The virtualenvs live in ``bench/.peers/<name>/`` (git-ignored) and are made on
first use with ``pip install`` under a time limit; a finished install leaves
an ``installed`` marker, so later runs start at once.  Anything that goes wrong
(no such package here, an install that runs out of time, a peer that does not
start or answer) becomes a ``{"scenario": ..., "skipped": why}`` line: a peer
never fails the run.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

from procs import BENCH, HOST, ChildFailed, Cluster, descendants, die_with_parent
from scenarios import line

PEERS = BENCH / ".peers"
PACKAGES = {"norfab": ["norfab[nfcli]"], "crossbar": ["crossbar", "numpy<2"], "py-spy": ["py-spy"]}
"""What to install: NorFab's core imports pydantic, which only its extras bring;
autobahn imports bjdata, whose extension is built against NumPy 1.x.  py-spy is
the profiler of profile_dispatcher.py."""


class PeerUnavailable(RuntimeError):
    """The peer cannot be installed or started here; the message says why."""


def ensure_venv(name, settings):
    """The python of the peer's virtualenv, installing it within what is left of
    ``settings.install_budget`` (and taking the time it used from it).

    @raise PeerUnavailable: when the install fails or runs out of time.
    """
    started = time.monotonic()
    try:
        return _ensure_venv(name, settings.install_budget)
    finally:
        settings.install_budget = max(0.0, settings.install_budget
                                      - (time.monotonic() - started))


def _ensure_venv(name, limit):
    home = PEERS / name
    python = home / "bin" / "python"
    if (home / "installed").exists():
        return python
    PEERS.mkdir(parents=True, exist_ok=True)
    log = PEERS / f"{name}-install.log"
    deadline = time.monotonic() + limit
    steps = [[sys.executable, "-m", "venv", home]] if not python.exists() else []
    steps.append([python, "-m", "pip", "install", "--disable-pip-version-check",
                  *PACKAGES[name]])
    for step in steps:
        code = _run_until(step, deadline, log)
        if code is None:
            raise PeerUnavailable(
                f"installing {' '.join(PACKAGES[name])} needed more than the {limit:.0f} s "
                f"left of this run's install time; the next run goes on from pip's cache "
                f"(log: {log})")
        if code != 0:
            raise PeerUnavailable(f"{' '.join(map(str, step[1:]))} failed with exit status "
                                  f"{code} (log: {log})")
    (home / "installed").write_text(" ".join(PACKAGES[name]) + "\n")
    return python


def _run_until(args, deadline, log_path):
    """Run ``args`` (in a process group of its own) until it exits or ``deadline``
    passes; its exit status, or None when it was killed at the deadline."""
    with open(log_path, "ab") as log:
        step = subprocess.Popen([str(a) for a in args], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=die_with_parent)
    try:
        return step.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(step.pid, signal.SIGKILL)
        step.wait()
        return None


def _free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_for_port(port, child, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise ChildFailed(f"{child.name} exited with {child.popen.returncode}"
                              f"{child.log_tail()}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise ChildFailed(f"{child.name} did not listen on {port} within {timeout:g}s")


def _skipped(names, error):
    lines = str(error).strip().splitlines() or [repr(error)]
    why = " / ".join(line.strip() for line in lines[:1] + lines[1:][-3:])
    return [{"scenario": name, "skipped": why} for name in names]


def norfab(settings):
    """One broker, one worker, ``run_job`` from 100 client threads."""
    try:
        python = ensure_venv("norfab", settings)
        base = settings.run_dir / "norfab"
        base.mkdir(exist_ok=True)
        with Cluster(settings.run_dir) as cluster:
            driver = cluster.start("norfab", [
                python, BENCH / "peer_norfab.py", base, "--in-flight", 100,
                "--warmup", settings.warmup, "--duration", settings.duration,
                "--rounds", settings.rounds], timeout=120, group=True)
            result = driver.result(settings.warmup + settings.duration * settings.rounds + 60)
    except (PeerUnavailable, ChildFailed, OSError) as e:
        return _skipped(["norfab"], e)
    return [line("norfab", result["rounds"], in_flight=100, version=_version(python, "norfab"))]


def crossbar(settings):
    """A Crossbar router, a callee of ``bench.echo`` and callers with 1 and 100 calls in flight."""
    names = ["crossbar-latency", "crossbar-pipelined"]
    lines = []
    try:
        python = ensure_venv("crossbar", settings)
        port = _free_port()
        cbdir = settings.run_dir / "crossbar"
        _router_config(cbdir, port)
        with Cluster(settings.run_dir) as cluster:
            router = cluster.start("crossbar-router", [
                python.parent / "crossbar", "start", "--cbdir", cbdir, "--loglevel", "warn"],
                ready=False, group=True)
            _wait_for_port(port, router)
            callee = cluster.start("crossbar-callee",
                                   [python, BENCH / "peer_crossbar.py", "callee", port])
            workers = descendants(router.pid)
            watch = [f"controller={router.pid}", f"callee={callee.pid}"] + [
                f"router{'-' + str(i) if i else ''}={pid}" for i, pid in enumerate(workers)]
            for name, in_flight in zip(names, (1, 100), strict=True):
                caller = cluster.start(f"{name}-caller", [
                    python, BENCH / "peer_crossbar.py", "caller", port, "--in-flight", in_flight,
                    "--warmup", settings.warmup, "--duration", settings.duration,
                    "--rounds", settings.rounds, *sum((["--watch", w] for w in watch), [])],
                    ready=False)
                result = caller.result(settings.warmup + settings.duration * settings.rounds + 30)
                lines.append(line(name, result["rounds"], in_flight=in_flight,
                                  transport="rawsocket+cbor",
                                  version=_version(python, "crossbar")))
    except (PeerUnavailable, ChildFailed, OSError) as e:
        return lines + _skipped(names[len(lines):], e)
    return lines


def _router_config(cbdir, port):
    anyone = {"uri": "", "match": "prefix",
              "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
              "disclose": {"caller": False, "publisher": False}, "cache": True}
    config = {"version": 2, "controller": {}, "workers": [{
        "type": "router",
        "realms": [{"name": "realm1", "roles": [{"name": "anonymous",
                                                  "permissions": [anyone]}]}],
        "transports": [{"type": "rawsocket",
                        "endpoint": {"type": "tcp", "port": port, "interface": HOST},
                        "options": {"max_message_size": 1048576},
                        "serializers": ["cbor"]}]}]}
    cbdir.mkdir(parents=True, exist_ok=True)
    (cbdir / "config.json").write_text(json.dumps(config, indent=2))


def _version(python, package):
    try:
        out = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                              f"print(m.version({package!r}))"], capture_output=True,
                             text=True, timeout=30)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None
