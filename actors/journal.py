"""z_server's bag storage for actors: the dispatcher's journal, by (server, seq) key.

An actor reaches it as ``self.journal`` (a client may wrap itself the same
way, ``JournalClient(client)``); every call is a request to the ``journal``
service the dispatcher answers itself, so it fails with UNKNOWN_SERVICE when
the dispatcher keeps no journal.  A key is ``(server, seq)``: the name and
sequence number of the dispatcher's stamp on the request that saved the bag.
"""

from twisted.internet.defer import Deferred

SERVICE = "journal"


class JournalClient:
    """The journal's calls, made through ``asker`` (anything with ``ask`` and
    ``tell`` as :class:`~actornet.actors.actor.Actor` has them).  Each returns a
    Deferred that fails with the dispatcher's error when the call cannot be
    carried out."""

    def __init__(self, asker, timeout=30.0):
        self.asker = asker
        self.timeout = timeout

    def save(self, bag):
        """Keep ``bag`` in the journal; fires with its key ``(server, seq)``."""
        return self._ask("save", {"bag": _plain(bag)}).addCallback(
            lambda answer: tuple(answer["key"]))

    def get(self, key):
        """The bag saved (or routed) under ``key``, or None when there is none."""
        return self.read(key).addCallback(
            lambda stored: stored["body"] if stored is not None else None)

    def read(self, key):
        """Everything kept under ``key``: ``key``, ``at``, ``service``, ``method``,
        ``envelope``, ``body`` and ``route`` (stamps as dicts); None when none."""
        return self._ask("get", {"key": list(key)}).addCallback(
            lambda answer: dict(answer) if "route" in answer else None)

    def last(self, n=10, service=None):
        """The ``n`` newest bags (of ``service``, when given), newest first, as
        :meth:`read` gives them."""
        data = {"n": n} if service is None else {"n": n, "service": service}
        return self._ask("last", data).addCallback(lambda answer: answer["bags"])

    def save_and_send(self, bag, service, method, *, target="any"):
        """Keep ``bag``, then tell ``service.method`` with it; fires with its key
        once it is saved and sent."""
        def send(key):
            self.asker.tell(service, method, _plain(bag), target=target)
            return key
        return self.save(bag).addCallback(send)

    def match_merge(self, bag, key):
        """Merge the map ``bag`` into the one kept under ``key`` (its fields win),
        keep the result there and fire with it: z_server's way of joining partial
        results.  The first merge under a key keeps ``bag`` as it is."""
        return self._ask("match_merge", {"key": list(key), "bag": _plain(bag)}).addCallback(
            lambda answer: answer["bag"])

    def _ask(self, method, data) -> Deferred:
        return self.asker.ask(SERVICE, method, data, timeout=self.timeout)


def _plain(bag):
    """A bag's data without its route (a DataBag is a dict with more on it)."""
    return dict(bag) if isinstance(bag, dict) else bag
