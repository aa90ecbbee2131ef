"""What ``actornet call`` shows while it waits: progress reports, and Ctrl-C.

Reports go to stderr as they come, so stdout stays the answer's JSON alone: a
rich bar redrawn in place when stderr is a terminal and the reports count
``done`` of ``total`` (other reports are printed above it), otherwise one line
per report.  Ctrl-C cancels the request (the handler is told to stop) rather
than killing the process mid-exchange.
"""

import json
import signal
import sys
from contextlib import contextmanager

from actornet.console import ProgressBar

EXIT_CANCELLED = 130
"""``call`` was interrupted (SIGINT) and its request cancelled: 128 + SIGINT, as shells say."""


class ProgressPrinter:
    """Called with each progress report of one request; :meth:`finish` ends a bar."""

    def __init__(self, label, clock, stream=None):
        self.label = label
        self.clock = clock
        self.stream = sys.stderr if stream is None else stream
        self.bar = None

    def __call__(self, bag):
        done, total = bag.get("done"), bag.get("total")
        if _count(done) and _count(total):
            if self.bar is None:
                self.bar = ProgressBar.for_terminal(self.label, self.clock, self.stream,
                                                    in_bytes=False)
            if self.bar is not None:
                self.bar(done, total)
                return
        line = f"progress ({bag.sender}): {json.dumps(dict(bag), default=str)}"
        if self.bar is not None:
            self.bar.note(line)
        else:
            print(line, file=self.stream, flush=True)

    def finish(self):
        if self.bar is not None:
            self.bar.finish()


def _count(value):
    return type(value) in (int, float) and value >= 0


@contextmanager
def cancelled_by_interrupt(reactor, asking):
    """While inside, SIGINT cancels the Deferred ``asking`` (in the reactor's thread)
    instead of stopping the reactor; the previous handler is put back after."""
    previous = signal.signal(signal.SIGINT,
                             lambda number, frame: reactor.callFromThread(asking.cancel))
    try:
        yield asking
    finally:
        signal.signal(signal.SIGINT, previous)
