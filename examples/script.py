# script.py: run with `python script.py` while the example network runs
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from actornet import connect


async def main(reactor):
    client = await connect()        # reads the connection file the dispatcher wrote
    try:
        answer = await client.ask("math", "add", {"a": 50, "b": 49})
        print(answer["result"])
    finally:
        await client.close()


react(lambda reactor: ensureDeferred(main(reactor)))
