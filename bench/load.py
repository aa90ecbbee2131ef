"""The load generator: keeps N requests in flight and times each one.

    python bench/load.py actornet tcp:host=127.0.0.1:port=5570 --in-flight 100
    python bench/load.py raw 127.0.0.1:5571 --in-flight 1
    python bench/load.py nats nats://127.0.0.1:4222 --service bench.echo --in-flight 100

``actornet`` asks ``--service`` (every ``--cross-every``-th request asks
``--cross`` instead), once each answers; ``nats`` makes NATS requests on the
subject ``--service`` with nats-py, on Twisted's asyncio reactor.

After a warmup it measures ``--rounds`` windows of ``--duration`` seconds and
prints ``RESULT {"rounds": [...]}``: per round the completed requests, the
request rate, p50/p99 latency (``time.perf_counter`` around each request) and
the CPU seconds used during the round by this process (``client``) and by
each ``--watch ROLE=PID``.

:class:`Load` only needs a Twisted clock, so the Crossbar caller reuses it.
"""

import argparse
import os
import sys
import time

from procs import round_options, say, watched
from stats import one_round
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

BODY_PAD = "x" * 72


def request_data(size=0):
    """The request body: a ~100-byte CBOR map, or one carrying ``size`` bytes."""
    if size:
        return {"blob": os.urandom(size)}
    return {"op": "echo", "seq": 123456, "payload": BODY_PAD, "ok": True}


def _cpu(pid):
    from procs import cpu_seconds  # a Linux /proc reader; the peers' venvs never watch

    try:
        return cpu_seconds(pid)
    except OSError:
        return None


class Load:
    """Keeps ``in_flight`` requests outstanding through ``send``.

    ``send(done)`` starts one request and arranges for ``done(ok, why=None)``
    to be called once when it ends.
    """

    def __init__(self, clock, send, in_flight, watch=None):
        self.clock = clock
        self.send = send
        self.in_flight = in_flight
        self.watch = dict(watch or {})
        self.outstanding = 0
        self.completed = 0
        self.errors = 0
        self.first_error = None
        self.latencies = []
        self.stopping = False
        self._drained = None

    def run(self, warmup, duration, rounds):
        """Warm up, then measure; a Deferred firing with one dict per round."""
        finished = Deferred()
        measured = []

        def end_round(start):
            mark = self._mark()
            measured.append(self._round(start, mark))
            if len(measured) < rounds:
                self.clock.callLater(duration, end_round, mark)
            else:
                self._stop().addCallback(lambda _: finished.callback(measured))

        def begin():
            self.clock.callLater(duration, end_round, self._mark())

        for _ in range(self.in_flight):
            self._issue()
        self.clock.callLater(warmup, begin)
        return finished

    def _mark(self):
        latencies, self.latencies = self.latencies, []
        return {"t": time.perf_counter(), "completed": self.completed, "errors": self.errors,
                "latencies": latencies,
                "cpu": {role: _cpu(pid) for role, pid in self.watch.items()}}

    def _round(self, start, end):
        cpu = {}
        for role in self.watch:
            before, after = start["cpu"][role], end["cpu"][role]
            cpu[role] = after - before if None not in (before, after) else None
        return one_round(end["latencies"], end["completed"] - start["completed"],
                         end["t"] - start["t"], end["errors"] - start["errors"], cpu=cpu)

    def _issue(self):
        self.outstanding += 1
        started = time.perf_counter()
        self.send(lambda ok, why=None: self._done(started, ok, why))

    def _done(self, started, ok, why):
        self.outstanding -= 1
        self.completed += 1
        self.latencies.append(time.perf_counter() - started)
        if not ok:
            self.errors += 1
            self.first_error = self.first_error or str(why)
        if self.stopping:
            if not self.outstanding and not self._drained.called:
                self._drained.callback(None)
        elif ok:
            self._issue()
        else:
            self.clock.callLater(0.01, self._issue)

    def _stop(self, grace=10.0):
        """Stop issuing; fire once the outstanding requests ended (or after ``grace``)."""
        self.stopping = True
        self._drained = Deferred()
        if not self.outstanding:
            self._drained.callback(None)
        timer = self.clock.callLater(grace, lambda: self._drained.called
                                     or self._drained.callback(None))
        return self._drained.addCallback(lambda _: timer.active() and timer.cancel())


def report(rounds, load, **extra):
    """Print the RESULT line the orchestrator waits for."""
    say("RESULT", dict(extra, rounds=rounds, first_error=load.first_error))


async def _actornet_sender(reactor, endpoint, method, data, service, cross, every):
    from actornet import ActornetError, connect

    client = await connect(endpoint, name=f"bench-load-{os.getpid()}")
    for each in filter(None, (service, cross)):
        await _answered(reactor, client, each, method, data, ActornetError)
    count = 0

    def send(done):
        nonlocal count
        count += 1
        target = cross if every and count % every == 0 else service
        client.ask(target, method, data).addCallbacks(
            lambda _: done(True), lambda failure: done(False, failure.getErrorMessage()))

    return send


async def _answered(reactor, client, service, method, data, refused, timeout=30.0):
    """Wait until ``service`` answers: a federated dispatcher learns the others'
    actors from their hellos, so it may not know them yet when the load starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.ask(service, method, data, timeout=5.0)
        except refused:
            if time.monotonic() > deadline:
                raise
            await deferLater(reactor, 0.05, lambda: None)


async def _nats_sender(url, subject, data):
    import asyncio

    import nats

    client = await Deferred.fromFuture(asyncio.ensure_future(nats.connect(url)))

    def answered(future, done):
        if future.cancelled() or future.exception() is not None:
            done(False, "cancelled" if future.cancelled() else repr(future.exception()))
        else:
            done(True)

    def send(done):
        asyncio.ensure_future(client.request(subject, data, timeout=30)).add_done_callback(
            lambda future: answered(future, done))

    return send


async def _raw_sender(address, data):
    from raw_relay import connect_client

    client = await connect_client(address)
    return lambda done: client.ask(data, done)


async def _main(reactor, args):
    data = request_data(args.body_size)
    if args.kind == "actornet":
        send = await _actornet_sender(reactor, args.address, args.method, data, args.service,
                                      args.cross, args.cross_every)
    elif args.kind == "nats":
        import cbor2

        send = await _nats_sender(args.address, args.service, cbor2.dumps(data))
    else:
        send = await _raw_sender(args.address, data)
    load = Load(reactor, send, args.in_flight, watched(args.watch))
    rounds = await load.run(args.warmup, args.duration, args.rounds)
    report(rounds, load)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("actornet", "raw", "nats"))
    parser.add_argument("address",
                        help="actornet: a client endpoint; raw: HOST:PORT; nats: a NATS URL")
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--body-size", type=int, default=0,
                        help="send {'blob': SIZE random bytes} instead of the ~100-byte map")
    parser.add_argument("--method", default="echo", help="the Echo actor's method (actornet)")
    parser.add_argument("--service", default="bench",
                        help="the service to ask (actornet), the subject (nats)")
    parser.add_argument("--cross", help="another service, asked by every --cross-every-th "
                                        "request (actornet)")
    parser.add_argument("--cross-every", type=int, default=0, metavar="N")
    round_options(parser)
    args = parser.parse_args()
    if args.kind == "nats":
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    from twisted.internet import reactor

    def failed(failure):
        print(f"load failed: {failure.getTraceback()}", file=sys.stderr, flush=True)

    def go():
        d = Deferred.fromCoroutine(_main(reactor, args))
        d.addErrback(failed).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()


if __name__ == "__main__":
    main()
