"""Where an actor's blocking work runs: a thread pool, given to the actor as its clock is.

Handlers that touch the disk or call blocking libraries hand the work to
``self.runner.run(f, *args)`` instead of Twisted's global ``deferToThread``, so
a test (or a host that wants its own pool) can give the actor another runner,
and the test kit can see how much real work is still outstanding
(:attr:`ThreadRunner.busy`) before it lets virtual time jump ahead.
"""

from twisted.internet.threads import deferToThreadPool


class ThreadRunner:
    """Runs functions in ``reactor``'s thread pool (the global reactor's by default).

    ``busy`` counts the jobs started and not yet finished: it drops when a
    job's result reaches the reactor thread, just before the Deferred's own
    callbacks run.
    """

    def __init__(self, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.busy = 0

    def run(self, f, *args, **kwargs):
        """Call ``f(*args, **kwargs)`` in a thread.

        @return: a Deferred firing in the reactor thread with its result, or
            failing with its exception.
        """
        self.busy += 1
        running = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), f,
                                    *args, **kwargs)
        return running.addBoth(self._finished)

    def _finished(self, result):
        self.busy -= 1
        return result
