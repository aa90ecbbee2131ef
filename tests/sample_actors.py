"""Small actors the tests run."""

from twisted.internet.defer import Deferred

from actornet import Actor, handler


class Echo(Actor):
    """Answers with what it was sent, plus its own name."""

    services = ("echo",)

    @handler
    def echo(self, bag):
        return dict(bag, answered_by=self.name)

    @handler
    def big(self, bag):
        return {"blob": b"x" * bag["size"]}

    @handler
    async def fail(self, bag):
        raise KeyError(bag.get("key", "missing"))


class Stall(Actor):
    """Never answers ``wait`` until told to; counts what it was given."""

    services = ("stall",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waiting = []

    @handler
    def wait(self, bag):
        answer = Deferred()
        self.waiting.append(answer)
        return answer


class Stage(Actor):
    """One stage of a pipeline: records itself and forwards to ``options['next']``."""

    @handler
    def step(self, bag):
        bag.setdefault("stages", []).append(self.name)
        following = self.options.get("next")
        if following is None:
            return bag
        return self.forward(bag, following, "step")


class Relay(Actor):
    """Asks ``options['service']``.``options['method']`` and answers with what it got."""

    services = ("relay",)

    @handler
    async def pass_on(self, bag):
        return await self.ask(self.options["service"], self.options["method"],
                              timeout=bag["timeout"])

    @handler
    def greet(self, bag):
        return {"text": f"hello, {bag['name']}"}


class Counter(Actor):
    """Counts the calls it answered: its state must outlive a connection (failover)."""

    services = ("count",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    @handler
    def count(self, bag):
        self.calls += 1
        return {"calls": self.calls}
