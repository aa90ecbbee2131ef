"""NorFab for comparison: one broker, one worker with a trivial task, ``run_job``.

    bench/.peers/norfab/bin/python bench/peer_norfab.py BASE_DIR --in-flight 100

Runs in NorFab's own virtualenv (made by peers.py).  NorFab starts its broker
and worker as child processes of this one; ``--in-flight`` client threads each
call ``run_job`` in a loop, so that many jobs are always outstanding.  Prints
``READY`` once the worker is up and ``RESULT {"rounds": [...]}`` at the end.
"""

import argparse
import itertools
import multiprocessing
import os
import signal
import socket
import threading
import time

from norfab.core.nfapi import NorFab
from norfab.core.worker import NFPWorker, Task
from norfab.models import Result
from procs import cpu_seconds, say
from stats import one_round

DATA = {"op": "echo", "seq": 123456, "payload": "x" * 72, "ok": True}


class BenchWorker(NFPWorker):
    """Serves the ``bench`` service with one trivial task."""

    def __init__(self, inventory, broker, worker_name, exit_event=None, init_done_event=None,
                 log_level="WARNING"):
        super().__init__(inventory, broker, "bench", worker_name, exit_event, log_level)
        if init_done_event is not None:
            init_done_event.set()

    def worker_exit(self):
        pass

    @Task(fastapi=False, mcp=False, agent=False)
    def echo(self, data: dict = None) -> Result:
        return Result(result=data)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def inventory(port):
    return {
        "broker": {"endpoint": f"tcp://127.0.0.1:{port}"},
        "logging": {"handlers": {"terminal": {"level": "CRITICAL"},
                                 "file": {"level": "ERROR"}}},
        "workers": {"bench-worker-1": [{"service": "bench"}]},
        "topology": {"broker": True, "workers": ["bench-worker-1"]},
        "plugins": {"bench": {"worker": "peer_norfab:BenchWorker"}},
    }


def _asker(client, stop, finished):
    """Run jobs back to back until ``stop``; record (end time, latency, ok)."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            answer = client.run_job("bench", "echo", kwargs={"data": DATA}, workers="any",
                                    timeout=60)
            ok = bool(answer) and not any(r.get("failed") for r in answer.values())
        except Exception:
            ok = False
        now = time.perf_counter()
        finished.append((now, now - started, ok))


def _cpu(watch):
    return {role: cpu_seconds(pid) for role, pid in watch.items()}


def measure(client, in_flight, warmup, duration, rounds, watch):
    stop = threading.Event()
    finished = []
    threads = [threading.Thread(target=_asker, args=(client, stop, finished), daemon=True)
               for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    marks = [(time.perf_counter(), _cpu(watch))]
    for _ in range(rounds):
        time.sleep(duration)
        marks.append((time.perf_counter(), _cpu(watch)))
    stop.set()
    measured = []
    for (start, cpu_start), (end, cpu_end) in itertools.pairwise(marks):
        window = [(latency, ok) for t, latency, ok in finished if start <= t < end]
        cpu = {role: cpu_end[role] - cpu_start[role] for role in watch}
        measured.append(one_round([latency for latency, _ in window], len(window), end - start,
                                  sum(1 for _, ok in window if not ok), cpu=cpu))
    for thread in threads:
        thread.join(timeout=5)
    return measured


def _end():
    """End NorFab's broker and worker with us: the bench starts this script as the
    leader of its own process group, which NorFab's processes share."""
    for child in multiprocessing.active_children():
        child.kill()
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_dir")
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: _end())
    nf = NorFab(inventory_data=inventory(_free_port()), base_dir=args.base_dir)
    nf.start()
    client = nf.make_client()
    watch = {"broker": nf.broker.pid, "client": os.getpid()}
    for name, worker in nf.workers_processes.items():
        watch[name] = worker["process"].pid
    say("READY", {"pid": os.getpid()})
    rounds = measure(client, args.in_flight, args.warmup, args.duration, args.rounds, watch)
    say("RESULT", {"rounds": rounds})
    _end()


if __name__ == "__main__":
    main()
