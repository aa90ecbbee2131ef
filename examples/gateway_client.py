# gateway_client.py: python gateway_client.py math add '{"a": 50, "b": 49}'
"""Call a service through the network's WebSocket gateway, as any program can.

    python gateway_client.py SERVICE METHOD [DATA] [--url URL] [--token TOKEN]

Speaks the gateway's JSON protocol over autobahn's WebSocket client: waits
for the ``welcome`` frame, sends one ``call`` with ``progress`` on, prints
each progress report on stderr and the answer on stdout (exit status 0), or
the error's one line on stderr (exit status 1), as ``actornet call`` would.
"""

import argparse
import json
import sys

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.task import react


class OneCall(WebSocketClientProtocol):
    """Sends the factory's call once welcomed; fires ``factory.done`` with the answer."""

    def onMessage(self, payload, isBinary):
        frame = json.loads(payload)
        if frame["op"] == "welcome":
            self.sendMessage(json.dumps(self.factory.call).encode())
        elif frame["op"] == "progress":
            print(f"progress: {json.dumps(frame['data'])}", file=sys.stderr)
        elif frame["op"] in ("result", "error"):
            self.factory.done.callback(frame)
            self.sendClose()

    def onClose(self, wasClean, code, reason):
        if not self.factory.done.called:
            self.factory.done.errback(ConnectionError(reason))


async def main(reactor, args):
    url = args.url + (f"?token={args.token}" if args.token else "")
    factory = WebSocketClientFactory(url, protocols=["actornet.json"])
    factory.protocol = OneCall
    factory.done = Deferred()
    factory.call = {"op": "call", "id": 1, "service": args.service, "method": args.method,
                    "data": json.loads(args.data), "progress": True}
    host, port = factory.host, factory.port
    await clientFromString(reactor, f"tcp:host={host}:port={port}").connect(factory)
    try:
        frame = await factory.done
    except ConnectionError as e:
        print(f"gateway_client: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if frame["op"] == "error":
        print(frame["message"], file=sys.stderr)
        raise SystemExit(1)
    print(json.dumps(frame["result"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service")
    parser.add_argument("method")
    parser.add_argument("data", nargs="?", default="{}")
    parser.add_argument("--url", default="ws://127.0.0.1:5572/")
    parser.add_argument("--token")
    react(main, [parser.parse_args()])
