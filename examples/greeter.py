# greeter.py
from twisted.internet.task import deferLater

from actornet import Actor, handler


class Greeter(Actor):
    services = ("greet",)

    @handler
    def hello(self, bag):                     # bag: a dict, plus .route and .sender
        return {"text": f"hello, {bag['name']}"}

    @handler
    async def shout(self, bag):               # async def and Deferreds work too
        answer = await self.ask("greet", "hello", {"name": bag["name"]})
        return answer["text"].upper()

    @handler
    async def later(self, bag):               # timers on self.clock, never the reactor's:
        await deferLater(self.clock, bag["seconds"], lambda: None)  # virtual in memory mode
        return {"text": f"hello again, {bag['name']}"}
