"""The progress group: how many progress reports one handler gets to its asker per second.

A dispatcher, the Echo actor in a process of its own and the asker
(``progress_asker.py``, the Python client with ``on_progress``), three
processes.  Each job is one ask of ``report``, whose handler sends
:data:`EVENTS` reports ``{"done": i, "total": N}`` at once and then answers;
jobs run back to back, in rounds.  ``events_per_s`` is the median over rounds
of the reports received over the time from each job's first report to its
last; ``job_events_per_s`` the same over each whole job (ask to answer), and
``first_ms`` the median time from the ask to its first report (the handler's
reports leave in the writes that follow its turn of the reactor, so most of
the worker's work falls before the first one arrives); ``cpu_us_per_event``
the CPU each process spent in the round per report received.
"""

import statistics

from procs import Cluster
from scenarios import echo, endpoint, start_actors, start_dispatcher

NAMES = ["progress-events"]
EVENTS = 10_000
"""Progress reports per job."""


def progress(settings):
    """``progress-events``: one line."""
    with Cluster(settings.run_dir) as cluster:
        dispatcher = start_dispatcher(cluster, settings, "dispatcher-progress")
        worker = start_actors(cluster, settings, "worker-progress", dispatcher, [echo()])
        asker = cluster.python(
            "progress-asker", "progress_asker.py", endpoint(dispatcher), "--events", EVENTS,
            "--warmup", settings.warmup, "--duration", settings.duration,
            "--rounds", settings.rounds, "--watch", f"dispatcher={dispatcher.pid}",
            "--watch", f"worker={worker.pid}", ready=False)
        rounds = asker.result(settings.warmup + settings.duration * settings.rounds + 60)
        cluster.stop(asker)
    return [progress_line("progress-events", rounds["rounds"])]


def progress_line(scenario, rounds):
    """Medians over ``rounds`` of the rate, the job's time, and per role its CPU %
    of one core and its CPU microseconds per report received."""
    rates = [r["events_per_s"] for r in rounds]
    roles = rounds[0]["cpu"]
    return {
        "scenario": scenario, "events_per_s": statistics.median(rates),
        "events_per_s_min": min(rates), "events_per_s_max": max(rates),
        "rounds": len(rounds), "events_per_job": EVENTS,
        "jobs": sum(r["jobs"] for r in rounds),
        "dropped": sum(r["sent"] - r["received"] for r in rounds),
        "job_events_per_s": statistics.median(r["job_events_per_s"] for r in rounds),
        "first_ms": statistics.median(r["first_ms"] for r in rounds),
        "job_ms": statistics.median(r["job_ms"] for r in rounds),
        "job_ms_max": max(r["job_ms_max"] for r in rounds),
        "cpu_pct": {role: round(statistics.median(
            100 * r["cpu"][role] / r["seconds"] for r in rounds), 1) for role in roles},
        "cpu_us_per_event": {role: round(statistics.median(
            1e6 * r["cpu"][role] / max(r["received"], 1) for r in rounds), 2)
            for role in roles},
    }
