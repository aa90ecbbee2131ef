"""Long jobs at the dispatcher: progress on its way to the asker, cancellation on
its way to the worker.

A PROGRESS frame names the request by the id its worker knows; it goes to that
request's asker (after a forward, the original asker), stamped, under the id
the asker knows, tagged with the worker's name (a gathered request's with its
member's).  It is never the answer and never waits: for an asker over its
outbound limit it is dropped (counted), and the worker is not held back.

A CANCEL frame names the request by the id its asker knows.  Every copy in
flight leaves the table and its worker is sent a CANCEL under the id it knows;
no answer goes back (the asker gave up on it), and a late one is a dead letter.
The same happens when a request's deadline passes and when its asker leaves,
so no worker keeps working for an asker that has gone.  A frame about a request
that is not in flight for its sender is a dead letter: a peer can only ever
touch its own requests.
"""

from actornet.dispatcher.routes import extends
from actornet.protocols import messages


class LongJobs:
    """Handles PROGRESS and CANCEL frames; ``dead_letter(peer, envelope, why)``
    counts and logs a frame that belongs to nothing in flight."""

    def __init__(self, inflight, outbox, stats, dead_letter):
        self.inflight = inflight
        self.outbox = outbox
        self.stats = stats
        self.dead_letter = dead_letter

    def progress(self, peer, envelope, body, now):
        """Pass a worker's progress report to the request's asker, if it can take it."""
        pending = self.inflight.get(envelope["id"])
        if pending is None or pending.worker.via is not peer:
            self.dead_letter(peer, envelope, "progress of a request that is not in flight")
            return
        route = envelope.setdefault("r", [])
        if not extends(route, pending.route, peer):
            self.dead_letter(peer, envelope, "progress with a forged route")
            return
        asker = pending.asker
        if asker.outbound.over_limit:
            self.stats["progress_dropped"] += 1
            return
        self.stats["progress"] += 1
        self.outbox.stamp(route, peer, now)
        envelope["id"] = pending.asker_id
        envelope["src"] = pending.member if pending.gather is not None else pending.worker.name
        self.outbox.send(asker, envelope, body)

    def cancel(self, peer, envelope, body, now):
        """``peer`` cancels its request: every copy in flight is cancelled at its worker."""
        asker_id = envelope["id"]
        rids = [rid for rid in peer.asking if self.inflight.get(rid).asker_id == asker_id]
        if not rids:
            self.dead_letter(peer, envelope, "cancel of a request that is not in flight")
            return
        for rid in rids:
            self.stop(self.inflight.pop(rid))
            self.stats["cancelled"] += 1

    def asker_gone(self, asker):
        """``asker`` left: its requests are cancelled at their workers.  Returns how many."""
        rids = list(asker.asking)
        for rid in rids:
            self.stop(self.inflight.pop(rid))
        return len(rids)

    def stop(self, pending):
        """Tell the worker of a request that has left the table to stop working on it."""
        self.outbox.send(pending.worker.via, messages.cancel(pending.rid))
