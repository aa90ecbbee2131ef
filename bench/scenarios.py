"""The scenarios of the raw baseline and of actornet, as the orchestrator runs them.

Each group function takes the run's :class:`Settings` and returns its result
lines (dicts); a group's processes live exactly as long as its ``Cluster``.
"""

import importlib.util
import itertools
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nodes import write_config
from procs import BENCH, HOST, Cluster, cpu_seconds, rss_kib
from stats import medians

KIB = 1024
BODIES = (("actornet-body-1k", KIB, 32), ("actornet-body-64k", 64 * KIB, 8),
          ("actornet-body-1m", 1024 * KIB, 4))
FILE_BYTES = 64 * 1024 * KIB


@dataclass
class Settings:
    quick: bool
    run_dir: Path
    warmup: float
    duration: float
    rounds: int
    idle_seconds: float
    install_budget: float
    """Seconds left for installing peers, shared by all of them in this run."""
    results: dict
    dispatcher_python: str | None = None
    """The interpreter of every dispatcher process (None: the bench's own)."""

    @classmethod
    def make(cls, quick, run_dir, dispatcher_python=None, warmup=None):
        if quick:
            settings = cls(quick, run_dir, warmup=0.5, duration=1.0, rounds=3, idle_seconds=5.0,
                           install_budget=60.0, results={})
        else:
            settings = cls(quick, run_dir, warmup=2.0, duration=3.0, rounds=5, idle_seconds=10.0,
                           install_budget=900.0, results={})
        settings.dispatcher_python = dispatcher_python
        if warmup is not None:
            settings.warmup = warmup
        return settings


# -- process helpers ---------------------------------------------------------


def start_dispatcher(cluster, settings, name="dispatcher", actors=(), profile=None,
                     federation=None, reactor="default", **options):
    """A dispatcher process listening on a free loopback port (``info["port"]``),
    with ``actors`` in its own process; ``options`` go into its [dispatcher] table
    (``dispatcher_name`` as its ``name``; ``name`` is the process's),
    ``federation`` (a dict) is its [federation] table, and ``reactor`` is
    ``"default"`` or ``"asyncio"`` (which a federation needs).

    Under ``settings.dispatcher_python`` it runs this checkout's code (the
    repository root first on PYTHONPATH), so that interpreter needs only the
    dependencies, and an older install of actornet there cannot skew a comparison."""
    table = {"listen": ["tcp:0:interface=127.0.0.1:backlog=1024"], "connection_file": False}
    table.update(options)
    if "dispatcher_name" in table:
        table["name"] = table.pop("dispatcher_name")
    path = write_config(settings.run_dir / f"{name}.toml", dispatcher=table,
                        federation=federation, actors=actors)
    extra = ["--reactor", reactor] + (["--profile", profile] if profile else [])
    other = {}
    if settings.dispatcher_python:
        other = {"python": settings.dispatcher_python, "env": {"PYTHONPATH": str(BENCH.parent)}}
    return cluster.python(name, "nodes.py", path, "--log", settings.run_dir / f"{name}.twistd.log",
                          *extra, **other)


def start_actors(cluster, settings, name, dispatcher, actors, timeout=60.0):
    """A process running ``actors`` ([[actor]] tables) joined to ``dispatcher``;
    ready once every one of them is registered."""
    path = write_config(settings.run_dir / f"{name}.toml", join=endpoint(dispatcher),
                        actors=actors)
    return cluster.python(name, "nodes.py", path, "--log", settings.run_dir / f"{name}.twistd.log",
                          timeout=timeout)


def endpoint(dispatcher):
    """The client endpoint string of a started dispatcher."""
    return f"tcp:host={HOST}:port={dispatcher.info['port']}"


def echo(name="echo", services=("bench",), instances=1):
    return {"class": "echo:Echo", "name": name, "services": list(services),
            "instances": instances}


def run_load(cluster, settings, kind, address, in_flight, watch, rounds=None, **options):
    """Run one load generator to the end; its per-round results.  ``options`` are
    more of load.py's options (``body_size``, ``method``, ``service``, ``cross``,
    ``cross_every``)."""
    rounds = rounds or settings.rounds
    client = start_load(cluster, settings, kind, address, in_flight, watch, rounds, **options)
    return finish_load(cluster, settings, client, rounds)


def start_load(cluster, settings, kind, address, in_flight, watch, rounds, label="",
               body_size=0, **options):
    """A started load generator (see :func:`run_load`)."""
    args = [kind, address, "--in-flight", in_flight, "--warmup", settings.warmup,
            "--duration", settings.duration, "--rounds", rounds, "--body-size", body_size]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", value]
    for role, child in watch.items():
        args += ["--watch", f"{role}={child.pid}"]
    return cluster.python(f"load-{kind}-{in_flight}-{body_size}{label}", "load.py", *args,
                          ready=False)


def finish_load(cluster, settings, client, rounds):
    """Wait for a started load generator's result; its per-round results."""
    result = client.result(settings.warmup + settings.duration * rounds + 30)
    cluster.stop(client)
    measured = result["rounds"]
    if result.get("first_error"):
        measured[0]["first_error"] = result["first_error"]
    return measured


def together(cluster, settings, loads, rounds=None):
    """Run several load generators (``loads``: run_load's arguments each) at once;
    per round their sum.  The rate is the sum of theirs and the latency
    percentiles the worst of theirs; the CPU of the processes watched is the
    first generator's (watch them there only) and each generator's own is
    ``client-1``, ``client-2``, ...; ``completed`` is the summed rate over the
    first one's round, so CPU per request stays within one window."""
    rounds = rounds or settings.rounds
    children = [start_load(cluster, settings, rounds=rounds, label=f"-{index}", **load)
                for index, load in enumerate(loads, 1)]
    results = [finish_load(cluster, settings, child, rounds) for child in children]
    merged = []
    for parts in zip(*results, strict=True):
        first = parts[0]
        cpu = {role: used for role, used in first["cpu"].items() if role != "client"}
        cpu.update((f"client-{index}", part["cpu"]["client"])
                   for index, part in enumerate(parts, 1))
        rate = sum(part["req_per_s"] for part in parts)
        errors = [part["first_error"] for part in parts if part.get("first_error")]
        merged.append(dict(first, cpu=cpu, req_per_s=rate,
                           completed=round(rate * first["seconds"]),
                           errors=sum(part["errors"] for part in parts),
                           p50_ms=max(part["p50_ms"] for part in parts),
                           p99_ms=max(part["p99_ms"] for part in parts),
                           **({"first_error": errors[0]} if errors else {})))
    return merged


def interleaved(cluster, settings, loads):
    """Run every load of ``loads`` (scenario: run_load's arguments, or a list of
    them to run :func:`together`) for one round at a time, taking turns, so that
    all of them see the machine's noise alike; the rounds of each scenario."""
    measured = {name: [] for name in loads}
    for _ in range(settings.rounds):
        for name, load in loads.items():
            if isinstance(load, list):
                measured[name] += together(cluster, settings, load, rounds=1)
            else:
                measured[name] += run_load(cluster, settings, rounds=1, **load)
    return measured


def paired_ratio(rounds, baseline_rounds, field):
    """The median over rounds of ``field`` divided by the baseline's in the same turn."""
    return statistics.median(r[field] / b[field]
                             for r, b in zip(rounds, baseline_rounds, strict=True) if b[field])


def line(scenario, rounds, **fields):
    """A result line: medians over ``rounds``, and per role its CPU % of one core
    and its CPU microseconds per request."""
    out = {"scenario": scenario, **medians(rounds)}
    roles = [role for role in rounds[0].get("cpu", {})
             if all(r["cpu"][role] is not None for r in rounds)]
    out["cpu_pct"] = {role: round(statistics.median(
        100 * r["cpu"][role] / r["seconds"] for r in rounds), 1) for role in roles}
    out["cpu_us_per_req"] = {role: round(statistics.median(
        1e6 * r["cpu"][role] / max(r["completed"], 1) for r in rounds), 1) for role in roles}
    errors = [r["first_error"] for r in rounds if r.get("first_error")]
    if errors:
        out["first_error"] = errors[0]
    out.update(fields)
    return out


# -- groups --------------------------------------------------------------------


def relay(settings):
    """The raw relay and actornet (worker in its own process, and in the
    dispatcher's, and with the dispatcher's journal on), 1 and 100 requests in
    flight, taking turns round by round."""
    journal_path = settings.run_dir / "journal.db"
    for stale in settings.run_dir.glob("journal.db*"):
        stale.unlink()
    with Cluster(settings.run_dir) as cluster:
        hop = cluster.python("raw-relay", "raw_relay.py", "relay")
        raw_worker = cluster.python("raw-worker", "raw_relay.py", "worker", hop.info["port"])
        dispatcher = start_dispatcher(cluster, settings)
        worker = start_actors(cluster, settings, "worker", dispatcher, [echo()])
        inproc = start_dispatcher(cluster, settings, "dispatcher-inproc", actors=[echo()])
        journaled = start_dispatcher(cluster, settings, "dispatcher-journal",
                                     journal=str(journal_path), journal_max_bytes=1024**3)
        journaled_worker = start_actors(cluster, settings, "worker-journal", journaled, [echo()])
        raw = {"kind": "raw", "address": f"{HOST}:{hop.info['port']}",
               "watch": {"relay": hop, "worker": raw_worker}}
        actornet = {"kind": "actornet", "address": endpoint(dispatcher),
                    "watch": {"dispatcher": dispatcher, "worker": worker}}
        measured = interleaved(cluster, settings, {
            "raw-relay-latency": dict(raw, in_flight=1),
            "actornet-latency": dict(actornet, in_flight=1),
            "raw-relay-pipelined": dict(raw, in_flight=100),
            "actornet-pipelined": dict(actornet, in_flight=100),
            "actornet-inproc-pipelined": {"kind": "actornet", "address": endpoint(inproc),
                                          "watch": {"dispatcher": inproc}, "in_flight": 100},
            "actornet-pipelined-journal": {
                "kind": "actornet", "address": endpoint(journaled), "in_flight": 100,
                "watch": {"dispatcher": journaled, "worker": journaled_worker}},
        })
    lines = {name: line(name, rounds, in_flight=1 if name.endswith("latency") else 100)
             for name, rounds in measured.items()}
    for name, baseline, field in (
            ("actornet-latency", "raw-relay-latency", "p50_ms"),
            ("actornet-pipelined", "raw-relay-pipelined", "req_per_s"),
            ("actornet-inproc-pipelined", "raw-relay-pipelined", "req_per_s")):
        lines[name]["ratio_to_raw"] = paired_ratio(measured[name], measured[baseline], field)
    lines["actornet-pipelined-journal"].update(
        ratio_to_pipelined=paired_ratio(measured["actornet-pipelined-journal"],
                                        measured["actornet-pipelined"], "req_per_s"),
        **journal_size(journal_path))
    order = ("raw-relay-latency", "raw-relay-pipelined", "actornet-latency",
             "actornet-pipelined", "actornet-inproc-pipelined", "actornet-pipelined-journal")
    return [lines[name] for name in order]


def journal_size(path):
    """What a journal file holds once its dispatcher has stopped: ``journal_bags``,
    ``journal_file_bytes`` (the file and its WAL), ``journal_bytes_per_bag`` (of
    the file) and ``journal_payload_per_bag`` (envelope, body and route)."""
    files = sum(os.path.getsize(f) for f in path.parent.glob(path.name + "*"))
    with sqlite3.connect(path) as connection:
        bags, payload = connection.execute(
            "SELECT count(*), coalesce(avg(size), 0) FROM bags").fetchone()
    connection.close()
    return {"journal_bags": bags, "journal_file_bytes": files,
            "journal_bytes_per_bag": round(files / max(bags, 1), 1),
            "journal_payload_per_bag": round(payload, 1)}


def bodies(settings):
    """Requests carrying 1 KiB to 1 MiB; the worker answers with a small map.

    ``cpu_us_per_msg`` is the dispatcher's CPU per request (the request frame and
    its small answer); ``copy_us`` is what one copy of the body costs in Python
    on this machine, and ``extra_in_copies`` the CPU above the 1 KiB case
    expressed in such copies (how far from "flat apart from the copy").
    """
    lines = []
    with Cluster(settings.run_dir) as cluster:
        dispatcher = start_dispatcher(cluster, settings)
        worker = start_actors(cluster, settings, "worker", dispatcher, [echo()])
        watch = {"dispatcher": dispatcher, "worker": worker}
        for scenario, size, in_flight in BODIES:
            rounds = run_load(cluster, settings, "actornet", endpoint(dispatcher), in_flight,
                              watch, body_size=size, method="sink")
            cpu_us = statistics.median(
                1e6 * r["cpu"]["dispatcher"] / r["completed"] for r in rounds if r["completed"])
            result = line(scenario, rounds, in_flight=in_flight, body_bytes=size,
                          cpu_us_per_msg=round(cpu_us, 1), copy_us=round(copy_us(size), 1))
            result["mb_per_s"] = result["req_per_s"] * size / 1e6
            lines.append(result)
    small = lines[0]["cpu_us_per_msg"]
    for result in lines[1:]:
        result["extra_in_copies"] = (result["cpu_us_per_msg"] - small) / result["copy_us"]
    lines[-1]["cpu_ratio_1m_1k"] = lines[-1]["cpu_us_per_msg"] / small
    return lines


def body_echo(settings):
    """1 MiB bodies echoed: the raw relay (its worker decodes the body and encodes
    it again) and actornet (the Echo actor's ``echo``), 4 in flight, taking turns.

    ``dispatcher_cpu_ratio`` is the median over rounds of the dispatcher's CPU
    per request over the relay's in the same turn; ``worker_cpu_ratio`` the
    same for the Echo actor's process and the raw worker.
    """
    with Cluster(settings.run_dir) as cluster:
        hop = cluster.python("raw-relay", "raw_relay.py", "relay")
        raw_worker = cluster.python("raw-worker", "raw_relay.py", "worker", hop.info["port"])
        dispatcher = start_dispatcher(cluster, settings)
        worker = start_actors(cluster, settings, "worker", dispatcher, [echo()])
        size = 1024 * KIB
        measured = interleaved(cluster, settings, {
            "raw-relay-body-1m": {"kind": "raw", "address": f"{HOST}:{hop.info['port']}",
                                  "watch": {"relay": hop, "worker": raw_worker},
                                  "in_flight": 4, "body_size": size},
            "actornet-echo-body-1m": {"kind": "actornet", "address": endpoint(dispatcher),
                                      "watch": {"dispatcher": dispatcher, "worker": worker},
                                      "in_flight": 4, "body_size": size},
        })
    raw, ours = measured["raw-relay-body-1m"], measured["actornet-echo-body-1m"]
    lines = [line("raw-relay-body-1m", raw, in_flight=4, body_bytes=size),
             line("actornet-echo-body-1m", ours, in_flight=4, body_bytes=size)]
    for role, other in (("dispatcher", "relay"), ("worker", "worker")):
        lines[1][f"{role}_cpu_ratio"] = statistics.median(
            (r["cpu"][role] / r["completed"]) / (b["cpu"][other] / b["completed"])
            for r, b in zip(ours, raw, strict=True) if r["completed"] and b["cpu"][other])
    return lines


def copy_us(size, count=32):
    """Microseconds one copy of ``size`` bytes takes here, into fresh memory from
    memory out of the cache, as the dispatcher's copies are (median of 3 tries
    over ``count`` different bodies)."""
    blobs = [os.urandom(size) for _ in range(count)]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        copies = [blob[1:] for blob in blobs]
        times.append((time.perf_counter() - started) / count)
        del copies
    return statistics.median(times) * 1e6


def transfer(settings):
    """raw-copy-64m and fileshare-64m: the same 64 MiB file, taking turns, in MB/s
    (10^6 bytes per second)."""
    scratch = Path(tempfile.mkdtemp(prefix="actornet-bench-"))
    try:
        share = scratch / "share"
        share.mkdir()
        with open(share / "big.bin", "wb") as f:
            for _ in range(FILE_BYTES // (1024 * KIB)):
                f.write(os.urandom(1024 * KIB))
        with Cluster(settings.run_dir) as cluster:
            server = cluster.python("raw-file-server", "transfer.py", "serve", share / "big.bin")
            get = ["get", server.info["port"], "--rounds", 1, "--watch", f"server={server.pid}"]
            missing = [m for m in ("actornet.actors.fileshare", "actornet.fetch")
                       if importlib.util.find_spec(m) is None]
            if missing:
                raw = sum((_transfer_rounds(cluster, "raw-copy", get)
                           for _ in range(settings.rounds)), [])
                return [_transfer_line("raw-copy-64m", raw),
                        {"scenario": "fileshare-64m",
                         "skipped": f"{', '.join(missing)} not there yet"}]
            dispatcher = start_dispatcher(cluster, settings)
            share_actor = start_actors(cluster, settings, "fileshare", dispatcher, [
                {"class": "actornet.actors.fileshare:FileShare", "name": "fileshare",
                 "options": {"root": str(share)}}])
            fetch = ["fetch", endpoint(dispatcher), "big.bin", scratch / "copies", "--rounds", 1,
                     "--watch", f"dispatcher={dispatcher.pid}",
                     "--watch", f"fileshare={share_actor.pid}"]
            raw, fetched = [], []
            for _ in range(settings.rounds):
                raw += _transfer_rounds(cluster, "raw-copy", get)
                fetched += _transfer_rounds(cluster, "fetch", fetch)
        share_line = _transfer_line("fileshare-64m", fetched)
        share_line["ratio_to_raw"] = paired_ratio(fetched, raw, "mb_per_s")
        return [_transfer_line("raw-copy-64m", raw), share_line]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _transfer_rounds(cluster, name, args):
    child = cluster.python(name, "transfer.py", *args, ready=False)
    result = child.result(timeout=180)
    cluster.stop(child)
    for r in result["rounds"]:
        if r["bytes"] != FILE_BYTES:
            raise RuntimeError(f"{name} moved {r['bytes']} bytes, not {FILE_BYTES}")
        r["mb_per_s"] = r["bytes"] / r["seconds"] / 1e6
    return result["rounds"]


def _transfer_line(scenario, rounds):
    rates = [r["mb_per_s"] for r in rounds]
    seconds = sorted(r["seconds"] for r in rounds)
    cpu_pct = {role: round(statistics.median(100 * r["cpu"][role] / r["seconds"]
                                             for r in rounds), 1) for role in rounds[0]["cpu"]}
    return {"scenario": scenario, "mb_per_s": statistics.median(rates),
            "p50_ms": statistics.median(seconds) * 1e3, "p99_ms": seconds[-1] * 1e3,
            "rounds": len(rounds), "mb_per_s_min": min(rates), "mb_per_s_max": max(rates),
            "bytes": FILE_BYTES, "cpu_pct": cpu_pct}


def scale(settings):
    """Three stars at once, with 1, 100 and 1,000 actors registered (the worker
    and idle actors serving ``idle``), under pipelined load taking turns; the
    biggest dispatcher's RSS before and after its idle actors joined."""
    with Cluster(settings.run_dir) as cluster:
        stars = {}
        for actors in (1, 100, 1000):
            dispatcher = start_dispatcher(cluster, settings, f"dispatcher-{actors}")
            worker = start_actors(cluster, settings, f"worker-{actors}", dispatcher, [echo()])
            stars[actors] = dispatcher, worker
        biggest = stars[1000][0]
        time.sleep(0.5)
        rss_before = rss_kib(biggest.pid)
        start_actors(cluster, settings, "idle-99", stars[100][0], [echo("idle", ("idle",), 99)])
        start_actors(cluster, settings, "idle-999", biggest, [echo("idle", ("idle",), 999)])
        time.sleep(0.5)
        rss_after = rss_kib(biggest.pid)
        measured = interleaved(cluster, settings, {
            f"scale-{actors}": {"kind": "actornet", "address": endpoint(dispatcher),
                                "in_flight": 100,
                                "watch": {"dispatcher": dispatcher, "worker": worker}}
            for actors, (dispatcher, worker) in stars.items()})
        rss = {actors: rss_kib(dispatcher.pid) for actors, (dispatcher, _) in stars.items()}
    lines = [line(f"scale-{actors}", measured[f"scale-{actors}"], actors=actors, in_flight=100,
                  dispatcher_rss_kib=rss[actors]) for actors in (1, 100, 1000)]
    last = lines[-1]
    last["ratio_to_scale_1"] = paired_ratio(measured["scale-1000"], measured["scale-1"],
                                            "req_per_s")
    last["kib_per_idle_actor"] = round((rss_after - rss_before) / 999, 2)
    last["rss_before_idle_kib"], last["rss_after_idle_kib"] = rss_before, rss_after
    return lines


def idle(settings):
    """The dispatcher's CPU with 1,000 idle actors and 1 s keepalives."""
    with Cluster(settings.run_dir) as cluster:
        dispatcher = start_dispatcher(cluster, settings, "dispatcher-idle", keepalive_interval=1.0)
        start_actors(cluster, settings, "idle-1000", dispatcher, [echo("idle", ("idle",), 1000)])
        time.sleep(2.0)
        step = settings.idle_seconds / 5
        samples = [(time.perf_counter(), cpu_seconds(dispatcher.pid))]
        for _ in range(5):
            time.sleep(step)
            samples.append((time.perf_counter(), cpu_seconds(dispatcher.pid)))
        rss = rss_kib(dispatcher.pid)
    shares = [100 * (c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in itertools.pairwise(samples)]
    (t_first, c_first), (t_last, c_last) = samples[0], samples[-1]
    return [{"scenario": "idle-1000",
             "dispatcher_cpu_pct": 100 * (c_last - c_first) / (t_last - t_first),
             "dispatcher_cpu_pct_median_round": statistics.median(shares),
             "seconds": round(t_last - t_first, 2), "rounds": len(shares), "actors": 1000,
             "keepalive_interval": 1.0, "dispatcher_rss_kib": rss}]
