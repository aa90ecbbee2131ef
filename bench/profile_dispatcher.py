"""Profile the dispatcher (or the worker, or the client) under the pipelined load.

    python bench/profile_dispatcher.py [--seconds 10] [--top 25] [--no-py-spy]
    python bench/profile_dispatcher.py --body-size 1048576 --in-flight 4   # big bodies
    python bench/profile_dispatcher.py --role worker --no-cprofile   # the Echo actor
    python bench/profile_dispatcher.py --role client --no-cprofile   # the asking client

Two passes, each with a fresh dispatcher, an Echo worker and the load client,
all on 127.0.0.1:

1. cProfile: the dispatcher's reactor runs under ``cProfile`` (which slows it
   down, so the rate is lower than the benchmark's); the top functions by
   cumulative and by self time.
2. py-spy (a sampling profiler, installed into ``bench/.peers/py-spy`` on first
   use): samples the process of ``--role`` (the dispatcher by default) at full
   speed; the top functions by the share of samples in which they are on the
   stack (cumulative) and on top (self).

(The name is not ``profile.py``: a module of that name in bench/ would shadow
the standard library's ``profile``, which cProfile imports.)
"""

import argparse
import pstats
import subprocess
import sys
import threading
import time
from collections import Counter

import peers
from procs import BENCH, Cluster, raise_fd_limit
from scenarios import Settings, echo, endpoint, run_load, start_actors, start_dispatcher


def _star(cluster, settings, profile=None):
    dispatcher = start_dispatcher(cluster, settings, profile=profile)
    worker = start_actors(cluster, settings, "worker", dispatcher, [echo()])
    return dispatcher, worker


def _load(cluster, settings, dispatcher, worker, load):
    rounds = run_load(cluster, settings, "actornet", endpoint(dispatcher), load.in_flight,
                      {"dispatcher": dispatcher, "worker": worker}, body_size=load.body_size,
                      method=load.method or ("sink" if load.body_size else "echo"))
    r = rounds[0]
    cpu = r["cpu"]["dispatcher"]
    return (f"{r['req_per_s']:,.0f} req/s, dispatcher at {100 * cpu / r['seconds']:.0f} % "
            f"of a core, {1e6 * cpu / max(r['completed'], 1):.0f} us per request")


def with_cprofile(settings, load):
    stats_path = settings.run_dir / "dispatcher.pstats"
    with Cluster(settings.run_dir) as cluster:
        dispatcher, worker = _star(cluster, settings, profile=stats_path)
        rate = _load(cluster, settings, dispatcher, worker, load)
        cluster.stop(dispatcher)
    print(f"== cProfile: {rate} (slowed by the profiler); stats in {stats_path}")
    stats = pstats.Stats(str(stats_path), stream=sys.stdout)
    stats.strip_dirs()
    for order, title in (("cumulative", "cumulative time"), ("tottime", "self time")):
        print(f"\n-- top {load.top} by {title}")
        stats.sort_stats(order).print_stats(load.top)


def with_py_spy(settings, load):
    try:
        python = peers.ensure_venv("py-spy", settings)
    except peers.PeerUnavailable as e:
        print(f"== py-spy: skipped ({e})")
        return
    samples_path = settings.run_dir / f"{load.role}.py-spy.txt"
    with Cluster(settings.run_dir) as cluster:
        dispatcher, worker = _star(cluster, settings)

        def record(pid):
            return subprocess.Popen(
                [str(python.parent / "py-spy"), "record", "--pid", str(pid),
                 "--format", "raw", "--output", str(samples_path), "--rate", "250",
                 "--duration", str(int(settings.warmup + settings.duration))],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        recorders = []
        if load.role == "client":
            watcher = threading.Thread(
                target=lambda: recorders.append(record(_load_child(cluster).pid)), daemon=True)
            watcher.start()
        else:
            recorders.append(record({"dispatcher": dispatcher, "worker": worker}[load.role].pid))
        rate = _load(cluster, settings, dispatcher, worker, load)
        if load.role == "client":
            watcher.join(timeout=10)
        _, error = recorders[0].communicate(timeout=60)
        record = recorders[0]
    if record.returncode != 0 or not samples_path.exists():
        print(f"== py-spy: failed ({error.decode(errors='replace').strip()[-300:]})")
        return
    print(f"\n== py-spy: {rate}; samples in {samples_path}")
    total, inclusive, own = _collapsed(samples_path)
    for counts, title in ((inclusive, "cumulative (on the stack)"), (own, "self (on top)")):
        print(f"\n-- top {load.top} by {title}, % of {total} samples")
        for function, count in counts.most_common(load.top):
            print(f"  {100 * count / total:6.1f}%  {function}")


def _load_child(cluster):
    """The load generator of ``cluster``, once it has been started."""
    while True:
        for child in list(cluster.children):
            if child.name.startswith("load-"):
                return child
        time.sleep(0.01)


def _collapsed(path):
    """Sample counts from py-spy's raw (collapsed stack) output: the total, per
    function anywhere on the stack (once per sample), and per function on top."""
    total, inclusive, own = 0, Counter(), Counter()
    for line in open(path):
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack:
            continue
        count = int(count)
        frames = [_function(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for function in set(frames):
            inclusive[function] += count
    return total, inclusive, own


def _function(frame):
    """``name (path/file.py:123)`` -> ``name (file.py)``."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    return f"{name} ({file.rpartition('/')[2]})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per pass")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--body-size", type=int, default=0,
                        help="bytes per request body (the worker's sink answers small)")
    parser.add_argument("--method", help="the Echo actor's method (default: sink for big "
                                          "bodies, else echo)")
    parser.add_argument("--no-py-spy", action="store_true")
    parser.add_argument("--no-cprofile", action="store_true")
    parser.add_argument("--role", choices=("dispatcher", "worker", "client"),
                        default="dispatcher", help="the process py-spy samples")
    args = parser.parse_args()
    raise_fd_limit()
    run_dir = BENCH / ".runs" / "profile"
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings.make(False, run_dir)
    settings.warmup, settings.duration, settings.rounds = 1.0, args.seconds, 1
    if not args.no_cprofile:
        with_cprofile(settings, args)
    if not args.no_py_spy:
        with_py_spy(settings, args)


if __name__ == "__main__":
    main()
