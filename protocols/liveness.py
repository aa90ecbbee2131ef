"""The holdtime rule, for both ends of a link.

Each end sends a keepalive on a link that has been quiet for an interval, and
drops a peer it has heard nothing from for interval x multiplier (the
holdtime).  Any frame counts as a sign of life, so a busy link carries no
keepalives at all.  The dispatcher and the actor's link both ask this one
record, so the two ends can never disagree on the rule.
"""

import attrs

DEFAULT_INTERVAL = 5.0
DEFAULT_MULTIPLIER = 3


@attrs.frozen
class Liveness:
    """When a link is dead and when it needs a keepalive."""

    interval: float = DEFAULT_INTERVAL
    multiplier: int = DEFAULT_MULTIPLIER

    @property
    def holdtime(self):
        """Seconds of silence after which the other end is taken for dead."""
        return self.interval * self.multiplier

    def expired(self, now, last_seen):
        """Whether nothing has been heard for longer than the holdtime."""
        return now - last_seen > self.holdtime

    def keepalive_due(self, now, last_sent):
        """Whether this end has been quiet for an interval and should speak."""
        return now - last_sent >= self.interval

    def silence(self, now, last_seen):
        """How a peer dropped for silence is described in logs and lifecycle events."""
        return (f"no frame for {now - last_seen:.1f} s "
                f"(holdtime {self.holdtime:.3g} s)")
