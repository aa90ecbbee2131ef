"""The jobs service: submit a request, get a job id at once, ask for its result later.

NorFab's broker answers a submitted job with DISPATCHED (202) and the workers'
names before any of them has finished; this actor does the same for any
service of the network.  ``jobs.submit`` checks that some actor serves the
service (``unknown_service`` or ``no_workers`` at once otherwise, as an ask
would get them), sends the request, and answers ``{"status": 202, "job": ID,
"actors": [...]}``.  The job's outcome is kept: ``jobs.status`` tells how it
stands, ``jobs.wait`` answers once it is done, ``jobs.list`` lists them, and
``jobs.cancel`` gives it up (the handler is cancelled).  A job keeps the
handler's progress reports (the last 100) for ``jobs.status``.  Finished jobs
are kept ``keep_seconds`` (option, default an hour), then dropped and counted;
at most ``max_jobs`` are kept.

When the dispatcher keeps a journal, each job is saved in it and its id is its
journal key (``SERVER:SEQ``): its outcome is merged into that bag when it
ends, so ``jobs.status`` still answers after a restart, from the journal.
"""

import uuid

import attrs
from twisted.internet.defer import CancelledError, Deferred

from actornet.actors.actor import Actor, handler
from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError, Cancelled, NoWorkers, UnknownService

DISPATCHED = 202
PROGRESS_KEPT = 100
"""A job keeps its last this many progress reports."""


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
    progress: list = attrs.Factory(list)
    asked: object = None
    waiters: list = attrs.Factory(list)

    def row(self):
        row = {"job": self.id, "service": self.service, "method": self.method,
               "target": self.target, "actors": self.actors, "state": self.state,
               "submitted": self.submitted, "finished": self.finished,
               "progress": self.progress}
        if self.state == "done":
            row.update(result=self.result, answered_by=self.answered_by)
        elif self.error is not None:
            row["error"] = self.error
        return row


def _journal_key(job_id):
    """The journal key ``(server, seq)`` a job id ``SERVER:SEQ`` names; None for an
    id that names none (a random one)."""
    server, _, seq = str(job_id).rpartition(":")
    return (server, int(seq)) if server and seq.isdigit() else None


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
        job = Job("", service, method, target, actors, self.clock.seconds())
        job.id = await self._journal_id(job)
        self.jobs[job.id] = job
        job.asked = self.ask(service, method, bag.get("data", {}), target=target,
                             timeout=float(bag.get("timeout", 3600.0)),
                             on_progress=lambda report: self._progress(job, report))
        job.asked.addCallbacks(self._done, self._failed, callbackArgs=(job,),
                               errbackArgs=(job,))
        return {"status": DISPATCHED, "job": job.id, "actors": actors}

    @handler
    async def status(self, bag):
        """How job ``{job: ID}`` stands: running, done (with its result) or failed."""
        job = self.jobs.get(bag.get("job"))
        return job.row() if job is not None else await self._from_journal(bag)

    @handler
    async def wait(self, bag):
        """Answer once job ``{job: ID}`` is no longer running (its row)."""
        job = self.jobs.get(bag.get("job"))
        if job is None:
            return await self._from_journal(bag)
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

    async def _journal_id(self, job):
        """The job's journal key as its id once it is saved there; a random id when
        the dispatcher keeps no journal."""
        try:
            server, seq = await self.journal.save(job.row())
        except UnknownService:
            return uuid.uuid4().hex[:12]
        return f"{server}:{seq}"

    async def _from_journal(self, bag):
        """A job this service no longer holds (it restarted, or dropped it), as the
        journal kept it; one still running then was lost with the restart."""
        key = _journal_key(bag.get("job"))
        stored = None
        if key is not None:
            try:
                stored = await self.journal.get(key)
            except UnknownService:
                stored = None
        if not stored or "state" not in stored:
            self._job(bag)
        row = dict(stored, job=bag["job"])
        if row["state"] == "running":
            row.update(state="lost", error={"type": "lost", "message": "the jobs service "
                                            "restarted while the job ran"})
        return row

    def _job(self, bag):
        job = self.jobs.get(bag.get("job"))
        if job is None:
            raise JobError(f"no job {bag.get('job')!r} (unknown, or dropped after "
                           f"{self.keep_seconds:g} s)")
        return job

    def _progress(self, job, report):
        job.progress.append(dict(report))
        del job.progress[:-PROGRESS_KEPT]

    def _done(self, answer, job):
        job.state, job.result = "done", dict(answer)
        job.answered_by = answer.sender
        self._finish(job)

    def _failed(self, failure, job):
        if failure.check(CancelledError, Cancelled):
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
        key = _journal_key(job.id)
        if key is not None:
            self.journal.match_merge(job.row(), key=key).addErrback(
                lambda failure: self.log.warn("jobs: job {job} could not be kept in the "
                                              "journal: {why}", job=job.id,
                                              why=failure.getErrorMessage()))
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
