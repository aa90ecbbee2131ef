"""What a route vouches for, checked without decoding a stamp.

The dispatcher's stamps are its own; every other stamp must name the peer that
sent the bag on that hop (a stamp starts with the encoded name, see
:func:`~actornet.protocols.stamp.stamp_prefix`).  A new request or event keeps
only its sender's own stamp; an answer or a forward must carry exactly the
route the dispatcher sent with the request plus at most one stamp of its own.
"""

from actornet.protocols.codes import Kind
from actornet.protocols.stamp import Stamp


def described(envelope):
    """A frame as a log line names it: kind, id, service.method or topic."""
    kind = Kind(envelope["k"]).name
    if "top" in envelope:
        return f"{kind} on {envelope['top']}"
    if "svc" in envelope:
        return f"{kind} {envelope.get('id')} for {envelope['svc']}.{envelope.get('m')}"
    return f"{kind} {envelope.get('id')}"


def hop_names(route):
    """The names on a route's stamps, oldest first (``?`` for one that does not parse)."""
    names = []
    for item in route:
        try:
            names.append(Stamp.from_wire(item).name)
        except ValueError:
            names.append("?")
    return names


def fresh_route(route, peer):
    """A new request or event starts a fresh route: at most the sender's own stamp
    (whatever else a peer claims about where the bag has been is dropped)."""
    if route and (len(route) > 1 or not _names(route[0], peer)):
        route[:] = [stamp for stamp in route[-1:] if _names(stamp, peer)]


def extends(route, sent, peer):
    """Whether ``route`` is the route the dispatcher sent (``sent``) plus at most one
    stamp, of ``peer``'s own: the rest of a route is vouched for by the dispatcher.
    Through a federation link it is ``sent`` plus the stamps of the hops behind
    the other dispatcher, which vouched for them, or none at all: that
    dispatcher's own failure (a timeout, a lost actor)."""
    hops = len(sent)
    if peer.link is not None:
        return not route or (len(route) > hops and tuple(route[:hops]) == sent)
    if len(route) == hops:
        return tuple(route) == sent
    return (len(route) == hops + 1 and tuple(route[:hops]) == sent
            and _names(route[hops], peer))


def forged(peer):
    return (f"{peer.label} sent a route that is not the one it was given plus its own "
            "stamp")


def _names(stamp, peer):
    return type(stamp) is bytes and stamp.startswith(peer.stamp_prefix)
