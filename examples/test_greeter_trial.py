# test_greeter_trial.py: run with `python -m twisted.trial test_greeter_trial` beside greeter.py
from greeter import Greeter
from twisted.trial.unittest import TestCase

from actornet.testing import ClusterTestMixin


class GreeterTests(ClusterTestMixin, TestCase):
    async def shout(self, mode):
        cluster = await self.start_cluster(mode=mode)
        await cluster.add(Greeter("greeter-1"))
        client = await cluster.client()
        answer = await client.ask("greet", "shout", {"name": "ada"})
        self.assertEqual(answer, {"result": "HELLO, ADA"})

    async def test_shout_on_sockets(self):
        await self.shout("sockets")

    async def test_shout_in_memory(self):
        await self.shout("memory")
