"""The actor the benchmarks ask: echoes a bag, or swallows a big one."""

from actornet import Actor, handler


class Echo(Actor):
    """Serves ``bench`` by default; idle actors are the same class serving ``idle``."""

    services = ("bench",)

    @handler
    def echo(self, bag):
        """The request's data, as it came."""
        return bag

    @handler
    def sink(self, bag):
        """How many bytes the ``blob`` held (a small answer to a big request)."""
        return {"n": len(bag.get("blob", b""))}
