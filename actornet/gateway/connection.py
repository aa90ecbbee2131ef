"""One WebSocket's business with the network: its client, its calls in flight,
its subscriptions.

The protocol (:mod:`.protocol`) only decodes and encodes; this object decides.
Every operation's outcome is one frame handed to ``send``: a bad operation,
a full table of calls or a failure in the network is an ``error`` frame and
the connection goes on serving.
"""

from twisted.internet.defer import CancelledError

from actornet.protocols.codes import Status
from actornet.protocols.errors import ActorLost, ActornetError, Cancelled

from . import frames
from .operations import BadMessage, Call, Cancel, Publish, Subscribe, Unsubscribe


class Busy(ActornetError):
    """The connection already has ``max_calls`` calls in flight."""

    status = Status.BUSY


class GatewayConnection:
    """What one WebSocket asks of the network, through its own ``client``.

    @param send: called with each frame (a dict) for the WebSocket.
    @param max_calls: calls in flight at once; one more is refused ``busy``.
    """

    def __init__(self, client, send, max_calls):
        self.client = client
        self.send = send
        self.max_calls = max_calls
        self.calls = {}
        self.topics = {}
        self.closed = False
        self._handlers = {Call: self._call, Cancel: self._cancel, Publish: self._publish,
                          Subscribe: self._subscribe, Unsubscribe: self._unsubscribe}

    def received(self, operation):
        """Act on one checked operation (from :func:`.operations.read_operation`)."""
        self._handlers[type(operation)](operation)

    def refuse(self, error):
        """Answer a message that could not be read with an error frame."""
        self._send(frames.error(getattr(error, "id", None), error))

    def close(self):
        """The WebSocket is gone: leave the network (the dispatcher cancels the
        calls still in flight, as for any asker that disconnects); nothing more
        is sent."""
        self.closed = True
        return self.client.close()

    def _call(self, call):
        if call.id in self.calls:
            self.refuse(BadMessage(f"a call with id {call.id!r} is in flight already; "
                                   f"give each call an id of its own", id=call.id))
            return
        if len(self.calls) >= self.max_calls:
            self._send(frames.error(call.id, Busy(
                f"{len(self.calls)} calls are in flight on this connection (the gateway's "
                f"max_calls is {self.max_calls}): wait for an answer first")))
            return
        on_progress = None
        if call.progress:
            def on_progress(bag):
                self._send(frames.progress(call.id, bag))
        asking = self.client.ask(call.service, call.method, call.data, target=call.target,
                                 timeout=call.timeout, on_progress=on_progress)
        self.calls[call.id] = asking
        asking.addCallbacks(
            lambda answer: self._send(frames.result(call.id, answer, call.route)),
            lambda failure: self._failed(call, failure))
        asking.addBoth(self._forget, call.id)

    def _forget(self, _, id):
        del self.calls[id]

    def _failed(self, call, failure):
        error = failure.value
        if isinstance(error, CancelledError):
            error = Cancelled(f"{call.service}.{call.method} was cancelled by its asker")
        self._send(frames.error(call.id, error))

    def _cancel(self, cancel):
        asking = self.calls.get(cancel.id)
        if asking is None:
            self.refuse(BadMessage(f"no call with id {cancel.id!r} is in flight (answered "
                                   f"already, or never made)", id=cancel.id))
            return
        asking.cancel()

    def _publish(self, publish):
        try:
            sent = self.client.publish(publish.topic, publish.data)
        except (ActornetError, TypeError) as e:
            self._send(frames.error(publish.id, e))
            return
        if not sent:
            self._send(frames.error(publish.id, ActorLost(
                "the gateway lost its connection to the dispatcher")))
            return
        self._done(publish.id)

    def _subscribe(self, subscribe):
        topic = subscribe.topic
        if topic not in self.topics:
            self.topics[topic] = lambda bag: self._send(frames.event(topic, bag))
            self.client.subscribe(topic, self.topics[topic])
        self._done(subscribe.id)

    def _unsubscribe(self, unsubscribe):
        callback = self.topics.pop(unsubscribe.topic, None)
        if callback is not None:
            self.client.unsubscribe(unsubscribe.topic, callback)
        self._done(unsubscribe.id)

    def _done(self, id):
        if id is not None:
            self._send(frames.result(id, {}))

    def _send(self, frame):
        if not self.closed:
            self.send(frame)
