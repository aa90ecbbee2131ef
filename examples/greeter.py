# greeter.py
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
