"""Moving one big file: through the file share, and over a plain connection.

    python bench/transfer.py serve FILE              # streams FILE to each connection
    python bench/transfer.py get PORT --rounds N     # reads that stream, discarding it
    python bench/transfer.py fetch ENDPOINT PATH DEST --rounds N [--chunk-size B] [--in-flight N]

``get`` is the baseline (``raw-copy``): the bytes from a Twisted ``FileSender``
in 1 MiB reads, counted and dropped.  ``fetch`` is ``actornet.fetch.fetch``
through the dispatcher from a ``FileShare`` actor, which also writes the file
and checks its sha256; every round fetches into a new folder and deletes the
copy afterwards.  A first, unmeasured round warms both up (the share hashes the
file once).  Each prints ``RESULT {"rounds": [{"seconds", "bytes", "cpu"}]}``,
``cpu`` holding the CPU seconds of this process and of each ``--watch ROLE=PID``.
"""

import argparse
import os
import shutil
import sys
import time

from procs import cpu_seconds, round_options, say, watched
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import FileSender

CHUNK = 1024 * 1024


class BigFileSender(FileSender):
    CHUNK_SIZE = CHUNK


class Serve(Protocol):
    def __init__(self, path):
        self.path = path

    def connectionMade(self):
        source = open(self.path, "rb")
        done = BigFileSender().beginFileTransfer(source, self.transport)
        done.addBoth(lambda _: (source.close(), self.transport.loseConnection()))


class Count(Protocol):
    def __init__(self, finished):
        self.finished = finished
        self.received = 0

    def dataReceived(self, data):
        self.received += len(data)

    def connectionLost(self, reason):
        self.finished.callback(self.received)


async def _timed(copy, watch):
    """Run ``copy()`` (a coroutine function returning the bytes moved); its time,
    bytes and the CPU seconds of each watched process."""
    before = {role: cpu_seconds(pid) for role, pid in watch.items()}
    started = time.perf_counter()
    moved = await copy()
    seconds = time.perf_counter() - started
    cpu = {role: cpu_seconds(pid) - before[role] for role, pid in watch.items()}
    return {"seconds": seconds, "bytes": moved, "cpu": cpu}


async def _get(port, rounds, watch):
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)

    async def copy():
        finished = Deferred()
        await endpoint.connect(Factory.forProtocol(lambda: Count(finished)))
        return await finished

    return [await _timed(copy, watch) for _ in range(rounds + 1)][1:]


async def _fetch(address, path, dest, rounds, watch, options):
    from actornet import connect
    from actornet.fetch import fetch

    client = await connect(address, name=f"bench-fetch-{os.getpid()}")
    folder = os.path.join(dest, "copy")

    async def copy():
        result = await fetch(client, path, folder, **options)
        shutil.rmtree(folder)
        return result["bytes"]

    try:
        return [await _timed(copy, watch) for _ in range(rounds + 1)][1:]
    finally:
        await client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    serve = roles.add_parser("serve")
    serve.add_argument("file")
    get = roles.add_parser("get")
    get.add_argument("port", type=int)
    round_options(get, timed=False)
    fetch = roles.add_parser("fetch")
    fetch.add_argument("address")
    fetch.add_argument("path")
    fetch.add_argument("dest")
    round_options(fetch, timed=False)
    fetch.add_argument("--chunk-size", type=int, help="bytes per chunk (default: fetch's)")
    fetch.add_argument("--in-flight", type=int, help="chunks outstanding (default: fetch's)")
    args = parser.parse_args()

    if args.role == "serve":
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        endpoint.listen(Factory.forProtocol(lambda: Serve(args.file))).addCallback(
            lambda port: say("READY", {"pid": os.getpid(), "port": port.getHost().port}))
        reactor.run()
        return

    watch = watched(args.watch)
    work = (_get(args.port, args.rounds, watch) if args.role == "get"
            else _fetch(args.address, args.path, args.dest, args.rounds, watch, {
                name: value for name, value in (("chunk_size", args.chunk_size),
                                                ("in_flight", args.in_flight))
                if value is not None}))

    def finish(rounds):
        say("RESULT", {"rounds": rounds})

    def failed(failure):
        print(failure.getTraceback(), file=sys.stderr, flush=True)

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(work).addCallbacks(
        finish, failed).addBoth(lambda _: reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
