"""The asker of ``progress-events``: one job at a time, counting its progress reports.

    python bench/progress_asker.py ENDPOINT --events 10000 --rounds 3 --duration 3 \
        --warmup 2 [--watch ROLE=PID ...]

Each job asks ``--service``'s ``report`` for ``--events`` reports (the Echo
actor's handler sends them all, then answers how many it sent) and counts them
in ``on_progress``.  Jobs run back to back: for ``--warmup`` seconds unmeasured,
then ``--rounds`` windows of at least ``--duration`` seconds (each ends with
the job in progress).  It prints ``RESULT {"rounds": [...]}``: per round the
jobs, the reports sent and received, ``events_per_s`` (reports received, less
one per job, over the summed times from each job's first report to its last),
``job_events_per_s`` (reports received over the summed job times, ask to
answer), the median time from the ask to the first report (``first_ms``), the
median and worst job time (ask to answer), and the CPU seconds of this
process (``client``) and of each ``--watch ROLE=PID`` over the round.
"""

import argparse
import os
import statistics
import sys
import time

from procs import cpu_seconds, round_options, say, watched
from twisted.internet.defer import Deferred


async def _job(client, service, events):
    """One job: its reports received, first-to-last seconds, sent and seconds."""
    seen = []

    def on_progress(bag):
        seen.append(time.perf_counter())

    started = time.perf_counter()
    answer = await client.ask(service, "report", {"total": events}, on_progress=on_progress)
    ended = time.perf_counter()
    return {"received": len(seen), "sent": answer["sent"],
            "span": seen[-1] - seen[0] if len(seen) > 1 else 0.0,
            "first": seen[0] - started if seen else 0.0, "seconds": ended - started}


async def _round(client, service, events, duration, watch):
    before = {role: cpu_seconds(pid) for role, pid in watch.items()}
    started = time.perf_counter()
    jobs = [await _job(client, service, events)]
    while time.perf_counter() - started < duration:
        jobs.append(await _job(client, service, events))
    seconds = time.perf_counter() - started
    cpu = {role: cpu_seconds(pid) - before[role] for role, pid in watch.items()}
    received = sum(job["received"] for job in jobs)
    span = sum(job["span"] for job in jobs)
    gaps = sum(max(job["received"] - 1, 0) for job in jobs)
    times = sorted(job["seconds"] for job in jobs)
    return {"jobs": len(jobs), "sent": sum(job["sent"] for job in jobs), "received": received,
            "events_per_s": gaps / span if span else 0.0, "seconds": seconds,
            "job_events_per_s": received / sum(times),
            "first_ms": statistics.median(job["first"] for job in jobs) * 1e3,
            "job_ms": statistics.median(times) * 1e3, "job_ms_max": times[-1] * 1e3,
            "cpu": cpu}


async def _main(args, watch):
    from actornet import connect

    client = await connect(args.address, name=f"bench-progress-{os.getpid()}")
    try:
        await _round(client, args.service, args.events, args.warmup, {})
        return [await _round(client, args.service, args.events, args.duration, watch)
                for _ in range(args.rounds)]
    finally:
        await client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="a client endpoint of the dispatcher")
    parser.add_argument("--service", default="bench")
    parser.add_argument("--events", type=int, default=10000, help="progress reports per job")
    round_options(parser)
    args = parser.parse_args()
    watch = watched(args.watch)
    from twisted.internet import reactor

    def failed(failure):
        print(f"asker failed: {failure.getTraceback()}", file=sys.stderr, flush=True)

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(_main(args, watch)).addCallbacks(
        lambda rounds: say("RESULT", {"rounds": rounds}), failed).addBoth(
        lambda _: reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
