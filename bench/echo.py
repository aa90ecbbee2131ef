"""The actor the benchmarks ask: echoes a bag, swallows a big one, or reports progress."""

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

    @handler
    def report(self, bag):
        """``total`` progress reports ``{"done": i, "total": total}``, sent at once,
        then the answer: how many of them left (``progress`` returned True)."""
        total = bag.get("total", 0)
        sent = sum(self.progress(bag, {"done": done, "total": total}) for done in range(total))
        return {"sent": sent}
