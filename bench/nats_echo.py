"""NATS's own request/reply, the floor under federation: a nats-py responder.

    python bench/nats_echo.py nats://127.0.0.1:4222 bench.echo

Subscribes to the subject and answers every request with its payload, as
it came (no decoding: the cheapest answer nats-py can give); prints
``READY {"pid"}`` once subscribed and runs until SIGTERM.  Its requester is
``load.py nats``.
"""

import asyncio
import os
import signal
import sys

import nats
from procs import say


async def serve(url, subject):
    client = await nats.connect(url)

    async def answer(msg):
        await msg.respond(msg.data)

    await client.subscribe(subject, cb=answer, pending_bytes_limit=256 * 1024 * 1024)
    await client.flush()
    say("READY", {"pid": os.getpid()})
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await client.drain()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
