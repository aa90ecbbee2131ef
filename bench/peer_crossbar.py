"""Crossbar.io for comparison: WAMP RPC over rawsocket with CBOR.

    bench/.peers/crossbar/bin/python bench/peer_crossbar.py callee PORT
    bench/.peers/crossbar/bin/python bench/peer_crossbar.py caller PORT --in-flight 100

Runs in Crossbar's own virtualenv (made by peers.py, which also writes the
router's config).  ``callee`` registers ``bench.echo`` (returns its argument)
and prints ``READY``; ``caller`` keeps N calls in flight with the bench's
:class:`load.Load` and prints ``RESULT``.
"""

import argparse
import os

from autobahn.twisted.wamp import ApplicationRunner, ApplicationSession
from autobahn.wamp.serializer import CBORSerializer
from load import Load, report, request_data
from procs import round_options, say, watched
from twisted.internet import reactor

REALM = "realm1"


class Callee(ApplicationSession):
    async def onJoin(self, details):
        await self.register(lambda data: data, "bench.echo")
        say("READY", {"pid": os.getpid()})

    def onDisconnect(self):
        if reactor.running:
            reactor.stop()


class Caller(ApplicationSession):
    async def onJoin(self, details):
        args = self.config.extra
        data = request_data()

        def send(done):
            self.call("bench.echo", data).addCallbacks(
                lambda _: done(True), lambda failure: done(False, failure.getErrorMessage()))

        load = Load(reactor, send, args["in_flight"], args["watch"])
        rounds = await load.run(args["warmup"], args["duration"], args["rounds"])
        report(rounds, load)
        self.leave()

    def onDisconnect(self):
        if reactor.running:
            reactor.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("callee", "caller"))
    parser.add_argument("port", type=int, help="the router's rawsocket port")
    parser.add_argument("--in-flight", type=int, default=1)
    round_options(parser)
    args = parser.parse_args()
    watch = watched(args.watch)
    extra = {"in_flight": args.in_flight, "warmup": args.warmup, "duration": args.duration,
             "rounds": args.rounds, "watch": watch}
    runner = ApplicationRunner(f"rs://127.0.0.1:{args.port}", REALM, extra=extra,
                               serializers=[CBORSerializer()])
    runner.run(Callee if args.role == "callee" else Caller, auto_reconnect=False)


if __name__ == "__main__":
    main()
