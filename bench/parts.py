"""What each piece of a request's path costs, timed alone.

    python bench/parts.py [--number 100000]

``hotpath.py`` gives each role's total; this splits it: every step a request
takes through the dispatcher, the worker and the client, called on its own
(on a star wired as ``hotpath.py`` wires it) with ``timeit``, best of three.
One JSON line per step: its role, µs per call, how many times one request
makes it, and so its µs per request.  The raw relay's whole cost per request
is printed first, for scale (``hotpath.py``'s figures).
"""

import argparse
import json
import timeit

import hotpath
from load import request_data
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from actornet.actors.requests import Request, bag_of
from actornet.dispatcher.inflight import Pending
from actornet.dispatcher.routes import extends, fresh_route
from actornet.protocols import codec, messages
from actornet.protocols.databag import as_body
from actornet.protocols.deadlines import Deadlines
from actornet.protocols.envelope import check
from actornet.protocols.framing import frame_parts
from actornet.protocols.stamp import constant_part, stamp_after


def steps():
    """``(role, step, calls per request, function)`` for every step measured."""
    dispatcher, pipes = hotpath.actornet_star()
    client_peer, worker_peer = pipes["client"][3].peer, pipes["worker"][3].peer
    data = request_data()
    body = codec.encode(data)
    stamp = stamp_after(constant_part("bench-client", "host", 1, 2), 1, 1.0, 1.0, 1)
    request = messages.request(1, "bench", "echo", [stamp], ttl=30.0)
    request_bytes = codec.encode(request)
    decoded = codec.decode(request_bytes)
    sent = (stamp, stamp)
    answer_route = [*sent, worker_peer.stamp_prefix + stamp[len(client_peer.stamp_prefix):]]
    router, inflight = dispatcher.requests.router, dispatcher.inflight
    deadlines = Deadlines(reactor, lambda keys: None)
    constant = constant_part("echo", "host", 1, 2)

    def in_flight():
        rid = inflight.new_id()
        inflight.add(Pending(rid, client_peer, 1, worker_peer, reactor.seconds() + 30.0,
                             "bench", "echo", False, started=0.0, route=sent))
        inflight.pop(rid)

    def deadline():
        deadlines.discard(7, deadlines.add(7, reactor.seconds() + 30.0))

    def deferred():
        Deferred(lambda d: None).addCallback(lambda bag: bag).callback(data)

    return [
        ("all", "decode an envelope", 4, lambda: codec.decode(request_bytes)),
        ("all", "check an envelope", 4, lambda: check(decoded)),
        ("all", "encode an envelope", 4, lambda: codec.encode(request)),
        ("all", "stamp", 4, lambda: stamp_after(constant, 5, 1.7e9, 1.7e9, 3)),
        ("all", "frame_parts", 4, lambda: frame_parts(request_bytes, body)),
        ("dispatcher", "fresh_route", 1, lambda: fresh_route([stamp], client_peer)),
        ("dispatcher", "identity.may", 1, lambda: client_peer.identity.may("ask", "bench")),
        ("dispatcher", "router.check (hops, deadline)", 1, lambda: router.check(1, 30.0)),
        ("dispatcher", "router.choose (least busy)", 1,
         lambda: router.choose("bench", "any")),
        ("dispatcher", "in-flight entry, add and pop", 1, in_flight),
        ("dispatcher", "extends (answer's route)", 1,
         lambda: extends(answer_route, sent, worker_peer)),
        ("dispatcher", "metrics.answered", 1,
         lambda: dispatcher.metrics.answered("bench", "echo", 200, 0.001, "bench-client")),
        ("dispatcher", "gate.wrote", 2, lambda: worker_peer.outbound.wrote(100)),
        ("worker", "decode a body into a bag", 1, lambda: bag_of(body, sent, "bench-client")),
        ("worker", "Request record", 1,
         lambda: Request(1, sent, 1.0, False, "bench", "echo", "bench-client")),
        ("worker", "as_body + encode the answer", 1, lambda: codec.encode(as_body(data))),
        ("client", "messages.request", 1,
         lambda: messages.request(1, "bench", "echo", [stamp], ttl=30.0)),
        ("client", "Deferred, callback", 1, deferred),
        ("client", "deadline add and discard", 1, deadline),
        ("client", "decode the answer's bag", 1, lambda: bag_of(body, sent, "echo")),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100000, help="calls per timing")
    args = parser.parse_args()
    for role, step, per_request, function in steps():
        best = min(timeit.repeat(function, number=args.number, repeat=3)) / args.number
        print(json.dumps({"role": role, "step": step, "us": round(1e6 * best, 3),
                          "per_request": per_request,
                          "us_per_request": round(1e6 * best * per_request, 2)}), flush=True)


if __name__ == "__main__":
    main()
