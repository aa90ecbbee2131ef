"""Who in this process hears the dispatchers' own events.

The dispatcher publishes its actors' lives (joined, left, died on
``actornet.actors``; restarting, gave_up on ``actornet.supervisor``) to
subscribers over their connections.  Something in the same process (the
dashboard) hears them here instead, with no connection of its own: this
dispatcher's events as it publishes them, and in a federation those the others
relay.  Dispatchers' own events are few and never per message, so telling a
list of listeners costs nothing on the routing path.
"""

from twisted.logger import Logger


class LifecycleListeners(list):
    """Callables ``(envelope, body) -> None``; one that raises is logged and the
    others are still told."""

    log = Logger()

    def tell(self, envelope, body):
        """Tell every listener of a dispatcher's own event."""
        for listener in self:
            try:
                listener(envelope, body)
            except Exception:
                self.log.failure("a listener to the dispatchers' own events failed")
