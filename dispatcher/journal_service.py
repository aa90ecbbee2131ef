"""The ``journal`` service, answered by the dispatcher itself from its journal.

z_server's bag storage, over the network: ``save`` keeps a bag under the key
of the save request's own dispatcher stamp, ``get`` reads one back by key,
``match_merge`` merges a map into the one under a key (z_server's way of
joining partial results) and ``last`` lists the newest bags, of one service or
of all.  A bag as read is a map of its key, time, service, method, envelope
fields, decoded body and route stamps (see
:func:`~actornet.dispatcher.journal.row_dict`), which is what ``actornet
trace`` draws.
"""

from twisted.internet.defer import fail, maybeDeferred

from actornet.dispatcher.management import ManagementError
from actornet.protocols.codes import Status

SERVICE = "journal"

MAX_LAST = 1000
"""The most bags one ``last`` request may read."""


class JournalService:
    """Answers ``journal`` requests; ``journal`` is a
    :class:`~actornet.dispatcher.journal.Journal`, or None when the dispatcher
    keeps none (every request then fails with UNKNOWN_SERVICE)."""

    def __init__(self, journal):
        self.journal = journal
        self._methods = {
            "save": self.save,
            "get": self.get,
            "last": self.last,
            "match_merge": self.match_merge,
        }

    def answer(self, method, data, seq, envelope):
        """The answer to ``journal.<method>`` with request ``data``; ``seq`` and
        ``envelope`` are the request's own stamp number and envelope.

        @return: a Deferred firing with the answer, or failing with a
            :class:`~actornet.dispatcher.management.ManagementError`.
        """
        if self.journal is None:
            return fail(ManagementError(Status.UNKNOWN_SERVICE,
                                        "this dispatcher keeps no journal (set "
                                        "journal = \"PATH\" in its [dispatcher] table)"))
        handler = self._methods.get(method)
        if handler is None:
            known = ", ".join(sorted(self._methods))
            return fail(ManagementError(Status.UNKNOWN_METHOD,
                                        f"journal has no method {method!r} (it has: {known})"))
        return maybeDeferred(handler, data, seq, envelope)

    def save(self, data, seq, envelope):
        """Keep ``bag``; answers ``{"key": [server, seq]}``."""
        if "bag" not in data:
            raise ManagementError(Status.MALFORMED_BODY, "journal.save needs {bag: ...}")
        return self.journal.save(seq, _described(envelope), data["bag"],
                                 envelope.get("r", ())).addCallback(lambda key: {"key": key})

    def get(self, data, seq, envelope):
        """The bag under ``key`` as a map (its ``key``, ``route``, ``body``, ...);
        a map of the ``key`` alone when there is none (never kept, or dropped
        by the journal's bounds), since an answer is always a map."""
        server, number = _key(data)
        return self.journal.get(server, number).addCallback(
            lambda bag: bag if bag is not None else {"key": [server, number]})

    def last(self, data, seq, envelope):
        """The ``n`` newest bags (of ``service``, when given), newest first."""
        n = data.get("n", 10)
        service = data.get("service")
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= MAX_LAST:
            raise ManagementError(Status.MALFORMED_BODY,
                                  f"journal.last needs n from 1 to {MAX_LAST}, not {n!r}")
        if service is not None and not isinstance(service, str):
            raise ManagementError(Status.MALFORMED_BODY, "journal.last's service is text")
        return self.journal.last(n, service).addCallback(lambda bags: {"bags": bags})

    def match_merge(self, data, seq, envelope):
        """Merge the map ``bag`` into the one under ``key`` (stored as it is when
        there is none yet); answers ``{"key": ..., "bag": merged}``."""
        server, number = _key(data)
        bag = data.get("bag")
        if not isinstance(bag, dict):
            raise ManagementError(Status.MALFORMED_BODY, "journal.match_merge needs a map as bag")
        if server != self.journal.server:
            raise ManagementError(Status.MALFORMED_BODY,
                                  f"this journal keeps the keys of {self.journal.server!r}")

        def refused(failure):
            failure.trap(ValueError)
            raise ManagementError(Status.MALFORMED_BODY, failure.getErrorMessage())
        merged = self.journal.merge(number, _described(envelope), bag, envelope.get("r", ()))
        return merged.addCallbacks(lambda bag: {"key": [server, number], "bag": bag}, refused)


def _key(data):
    key = data.get("key")
    if (not isinstance(key, list) or len(key) != 2 or not isinstance(key[0], str)
            or not isinstance(key[1], int) or isinstance(key[1], bool)):
        raise ManagementError(Status.MALFORMED_BODY,
                              f"a journal key is [server, seq], not {key!r}")
    return key[0], key[1]


def _described(envelope):
    """The envelope fields kept with a saved bag (its route is kept apart)."""
    return {field: value for field, value in envelope.items() if field != "r"}
