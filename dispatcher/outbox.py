"""The dispatcher's one send path: route stamps and frames written to peers.

Every frame the dispatcher sends goes through :meth:`Outbox.write`, which
counts it, tells the receiver's outbound gate (flow control), and drops it as a
dead letter when its peer has gone.  Stamps carry the dispatcher's name, host,
pid and a sequence number of its own: ``seq``, the number of the last stamp,
which with the dispatcher's name is the key of the bag it stamped.
"""

import os
import socket

from actornet.protocols import codec
from actornet.protocols.framing import Cork, frame_parts, frame_size
from actornet.protocols.stamp import constant_part, stamp_after


class Outbox:
    """Writes to the connected ``peers`` (the dispatcher adds and removes them)."""

    def __init__(self, clock, name, stats):
        self.clock = clock
        self.name = name
        self.stats = stats
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.peers = set()
        self.cork = Cork()
        self.seq = 0

    def stamp(self, route, peer, arrived):
        """Append the dispatcher's stamp for a bag that came from ``peer`` at ``arrived``."""
        self.seq += 1
        constant = peer.our_stamp
        if not constant:
            constant = peer.our_stamp = constant_part(self.name, self.host, self.pid,
                                                      peer.conn_id)
        route.append(stamp_after(constant, self.seq, arrived, self.clock.seconds(),
                                 len(route) + 1))

    def send(self, peer, envelope, body=b"", requester=None):
        """Encode ``envelope`` and write it with ``body`` to ``peer``."""
        self.write(peer, frame_parts(codec.encode(envelope), body), requester)

    def write(self, peer, parts, requester=None):
        """Write an encoded frame (counted whole, as its header says); ``requester``
        is the peer whose own request this is, paused while ``peer`` is congested."""
        if peer not in self.peers:
            self.stats["dead_letters"] += 1
            return
        size = frame_size(parts)
        self.cork.write(peer.protocol, parts)
        peer.bytes_out += size
        peer.last_sent = self.clock.seconds()
        peer.outbound.wrote(size, requester.outbound if requester is not None else None)
