"""``actornet submit``, ``actornet job`` and ``actornet jobs``: the jobs service from
the command line (see :mod:`actornet.actors.jobs`)."""

import json

from actornet.commands import record_rows, with_client
from actornet.console import show_table
from actornet.shown import jsonable

JOB_COLUMNS = (("job", "JOB"), ("service", "SERVICE"), ("method", "METHOD"),
               ("state", "STATE"), ("actors", "ACTORS"), ("submitted", "SUBMITTED"),
               ("finished", "FINISHED"))
JOB_STYLES = {"failed": "red", "lost": "red", "cancelled": "dim"}
"""How a terminal shows a job by its state; the others are left plain."""


async def run_submit(reactor, args):
    request = {"service": args.service, "method": args.method, "data": args.data,
               "target": args.target, "timeout": args.job_timeout}
    answer = await with_client(reactor, args, lambda reached: reached.ask(
        "jobs", "submit", request))
    print(json.dumps(answer, default=jsonable))


async def run_job(reactor, args):
    method = "cancel" if args.cancel else "wait" if args.until_done else "status"
    answer = await with_client(reactor, args, lambda reached: reached.ask(
        "jobs", method, {"job": args.job}))
    print(json.dumps(answer, default=jsonable))
    return 1 if answer["state"] in ("failed", "cancelled") and args.until_done else None


async def run_jobs(reactor, args):
    answer = await with_client(reactor, args, lambda reached: reached.ask("jobs", "list"))
    if args.json:
        print(json.dumps(answer, default=jsonable))
        return
    jobs = answer["jobs"]
    show_table(record_rows(JOB_COLUMNS, jobs,
                           [JOB_STYLES.get(job.get("state"), "") for job in jobs]))
