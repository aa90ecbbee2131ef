# scatter.py: ask every quoter at once and join their answers into one bag
"""Scatter a request and join the answers with the dispatcher's journal.

``Broker.quotes`` saves a bag for the item (the journal answers with its key,
the dispatcher's name and stamp number), asks every ``quote`` actor for its
price, and merges each answer into the saved bag as it arrives
(``match_merge``: z_server's way of joining partial results).  The joined bag
is kept in the journal, so any actor can read it later by its key.

Run it beside a dispatcher that keeps a journal::

    [dispatcher]
    listen = "tcp:5570"
    journal = "bags.db"

    [[actor]]
    class = "scatter:Quoter"
    name = "quoter"
    instances = 3

    [[actor]]
    class = "scatter:Broker"
"""

from twisted.internet.defer import gatherResults

from actornet import Actor, handler


class Quoter(Actor):
    services = ("quote",)

    @handler
    def price(self, bag):
        return {self.name: len(bag["item"]) * int(self.name.rsplit("-", 1)[-1])}


class Broker(Actor):
    services = ("broker",)

    @handler
    async def quotes(self, bag):
        key = await self.journal.save({"item": bag["item"]})
        quoters = (await self.ask("mmi", "show_actors", {"service": "quote"}))["actors"]
        await gatherResults([
            self.ask("quote", "price", {"item": bag["item"]}, target=quoter["name"])
            .addCallback(self.journal.match_merge, key=key)
            for quoter in quoters])
        return {"key": list(key), "quotes": await self.journal.get(key)}
