"""The jobs service: submit a request, get a job id at once, ask for its result later.

NorFab's broker answers a submitted job with DISPATCHED (202) and the workers'
names before any of them has finished; this actor does the same for any
service of the network.  ``jobs.submit`` checks that some actor serves the
service (``unknown_service`` or ``no_workers`` at once otherwise, as an ask
would get them), sends the request, and answers ``{"status": 202, "job": ID,
"actors": [...]}``.  The job's outcome is kept: ``jobs.status`` tells how it
stands, ``jobs.wait`` answers once it is done, ``jobs.list`` lists them, and
``jobs.cancel`` gives it up.  Finished jobs are kept ``keep_seconds`` (option,
default an hour), then dropped and counted; at most ``max_jobs`` are kept.
"""

import uuid

import attrs
from twisted.internet.defer import CancelledError, Deferred

from actornet.actors.actor import Actor, handler
from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError, NoWorkers, UnknownService

DISPATCHED = 202


class JobError(ActornetError):
    """A ``jobs`` call that cannot be carried out (unknown job, bad request)."""

    status = Status.MALFORMED_BODY


@attrs.define(eq=False)
class Job:
    """One submitted request and what became of it."""

    id: str
    service: str
    method: str
    target: object
    actors: list
    submitted: float
    state: str = "running"
    finished: float | None = None
    result: object = None
    error: dict | None = None
    answered_by: str | None = None
    asked: object = None
    waiters: list = attrs.Factory(list)

    def row(self):
        row = {"job": self.id, "service": self.service, "method": self.method,
               "target": self.target, "actors": self.actors, "state": self.state,
               "submitted": self.submitted, "finished": self.finished}
        if self.state == "done":
            row.update(result=self.result, answered_by=self.answered_by)
        elif self.error is not None:
            row["error"] = self.error
        return row


class Jobs(Actor):
    """Serves ``jobs``: submit, status, wait, list, cancel."""

    services = ("jobs",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.jobs = {}
        self.dropped = 0
        self.keep_seconds = float(self.options.get("keep_seconds", 3600.0))
        self.max_jobs = int(self.options.get("max_jobs", 10_000))

    @handler
    async def submit(self, bag):
        """Start a job: ``{service, method, data, target, timeout}``."""
        service, method = bag.get("service"), bag.get("method")
        if not (isinstance(service, str) and isinstance(method, str)):
            raise JobError("submit needs {service: NAME, method: NAME, data, target, timeout}")
        target = bag.get("target", "any")
        serving = await self.ask("mmi", "serving", {"service": service})
        actors = list(serving["actors"])
        if not actors:
            cls = NoWorkers if serving["known"] else UnknownService
            raise cls(f"no actor serves {service!r} now" if serving["known"]
                      else f"no actor has ever served {service!r}")
        if target not in ("any", "all"):
            wanted = [target] if isinstance(target, str) else list(target)
            missing = [name for name in wanted if name not in actors]
            if missing:
                raise NoWorkers(f"no actor called {missing[0]!r} serves {service!r} now")
            actors = wanted
        self._forget_old()
        job = Job(uuid.uuid4().hex[:12], service, method, target, actors, self.clock.seconds())
        self.jobs[job.id] = job
        job.asked = self.ask(service, method, bag.get("data", {}), target=target,
                             timeout=float(bag.get("timeout", 3600.0)))
        job.asked.addCallbacks(self._done, self._failed, callbackArgs=(job,),
                               errbackArgs=(job,))
        return {"status": DISPATCHED, "job": job.id, "actors": actors}

    @handler
    def status(self, bag):
        """How job ``{job: ID}`` stands: running, done (with its result) or failed."""
        return self._job(bag).row()

    @handler
    def wait(self, bag):
        """Answer once job ``{job: ID}`` is no longer running (its row)."""
        job = self._job(bag)
        if job.state != "running":
            return job.row()
        waiter = Deferred()
        job.waiters.append(waiter)
        return waiter

    @handler
    def list(self, bag):
        """Every job kept, newest first, without results."""
        rows = [{key: value for key, value in job.row().items() if key != "result"}
                for job in sorted(self.jobs.values(), key=lambda j: -j.submitted)]
        return {"jobs": rows, "dropped": self.dropped}

    @handler
    def cancel(self, bag):
        """Give job ``{job: ID}`` up: its ask is cancelled; a finished job is left as it is."""
        job = self._job(bag)
        if job.state == "running":
            job.asked.cancel()
        return job.row()

    def _job(self, bag):
        job = self.jobs.get(bag.get("job"))
        if job is None:
            raise JobError(f"no job {bag.get('job')!r} (unknown, or dropped after "
                           f"{self.keep_seconds:g} s)")
        return job

    def _done(self, answer, job):
        job.state, job.result = "done", dict(answer)
        job.answered_by = answer.sender
        self._finish(job)

    def _failed(self, failure, job):
        if failure.check(CancelledError):
            job.state, job.error = "cancelled", {"type": "cancelled", "message": "cancelled"}
        else:
            error = failure.value
            job.state = "failed"
            job.error = {"type": getattr(error, "remote_type", None) or type(error).__name__,
                         "status": int(getattr(error, "status", Status.FAILURE)),
                         "message": str(error)}
        self._finish(job)

    def _finish(self, job):
        job.finished = self.clock.seconds()
        waiters, job.waiters = job.waiters, []
        for waiter in waiters:
            waiter.callback(job.row())

    def _forget_old(self):
        """Drop finished jobs older than ``keep_seconds``, and the oldest finished
        ones past ``max_jobs`` (counted in ``dropped``)."""
        now = self.clock.seconds()
        for job in list(self.jobs.values()):
            if job.finished is not None and (now - job.finished > self.keep_seconds
                                             or len(self.jobs) >= self.max_jobs):
                del self.jobs[job.id]
                self.dropped += 1
