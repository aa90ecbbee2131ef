"""How long the fuzz tests run, and the bounds they hold the code to.

By default (the suite, CI) each fuzz test runs a fixed, small number of
examples and must finish well within ``TIMEOUT`` seconds.  With
``ACTORNET_FUZZ_SECONDS=N`` each one keeps generating fresh examples for about
N seconds (see tests/fuzz/README.md)::

    ACTORNET_FUZZ_SECONDS=600 .venv/bin/pytest tests/fuzz -q

Hypothesis has no time budget of its own, so :func:`for_budget` calls a
``@given`` test again and again (each call draws new random examples) until
the time is up; a failure stops it at once, shrunk and reported as usual.
"""

import os
import time
import tracemalloc
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, settings
from twisted.logger import globalLogPublisher

SECONDS = float(os.environ.get("ACTORNET_FUZZ_SECONDS", "0") or 0)
TIMEOUT = 30 if SECONDS <= 0 else SECONDS + 120
MiB = 1024 * 1024

fuzz_timeout = pytest.mark.timeout(TIMEOUT)
"""Fails a fuzz test that hangs (a frame that makes the code loop forever)."""

fuzz_timeout_on_the_reactor = pytest.mark.timeout(TIMEOUT, method="thread")
"""The same for a test run on the reactor, which would swallow the exception
pytest-timeout's signal raises (its main loop logs and goes on): this one
stops the whole run, with every thread's stack.  Such a test should time out
by itself first (``Deferred.addTimeout``)."""


def examples(count):
    """Hypothesis settings for a fuzz test running ``count`` examples per call.

    No per-example deadline (a slow CI machine must not make the suite flaky);
    a hang is caught by :data:`fuzz_timeout`.  The database is off so a run
    depends on nothing but its random seed.
    """
    return settings(max_examples=count, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def for_budget(run):
    """Call ``run()`` once, or until ``ACTORNET_FUZZ_SECONDS`` have passed; returns
    how many times it ran."""
    stop = time.monotonic() + SECONDS
    rounds = 0
    while True:
        run()
        rounds += 1
        if time.monotonic() >= stop:
            return rounds


@contextmanager
def memory_peak_below(mebibytes):
    """Fail if the memory Python allocated inside the block ever exceeded
    ``mebibytes`` at once (a frame that makes the code buffer without bound)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    assert peak - base < mebibytes * MiB, (
        f"the run allocated {(peak - base) / MiB:.1f} MiB at its peak "
        f"(bound: {mebibytes} MiB)")


@contextmanager
def no_logged_failures():
    """Fail if anything logs a failure inside the block: an exception that Twisted
    caught and logged (one raised out of ``dataReceived``, an unhandled error in
    a Deferred) instead of letting it reach the test."""
    failures = []

    def observe(event):
        if "log_failure" in event:
            failures.append(event["log_failure"])

    globalLogPublisher.addObserver(observe)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observe)
    assert failures == [], [failure.getTraceback() for failure in failures]
