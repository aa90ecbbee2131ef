"""The kit under twisted.trial, which fails any test that leaves the reactor unclean."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

TRIAL_MODULE = '''
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from actornet import Actor, ActorLost, RequestTimeout, handler
from actornet.testing import ClusterTestMixin


class Stall(Actor):
    services = ("stall",)

    @handler
    def wait(self, bag):
        return Deferred()


class LeftoverTests(ClusterTestMixin, TestCase):
    async def timed_out(self, mode):
        cluster = await self.start_cluster(mode=mode)
        await cluster.add(Stall("stall-1"))
        client = await cluster.client()
        with self.assertRaises(RequestTimeout):
            await client.ask("stall", "wait", timeout=0.2)

    async def killed(self, mode):
        cluster = await self.start_cluster(mode=mode)
        await cluster.add(Stall("stall-1"))
        client = await cluster.client()
        pending = client.ask("stall", "wait", timeout=30)
        await cluster.wait_for(lambda: cluster.peer("stall-1").in_flight == 1)
        await cluster.kill("stall-1")
        with self.assertRaises(ActorLost):
            await pending

    async def test_timeout_on_sockets(self):
        await self.timed_out("sockets")

    async def test_timeout_in_memory(self):
        await self.timed_out("memory")

    async def test_kill_on_sockets(self):
        await self.killed("sockets")

    async def test_kill_in_memory(self):
        await self.killed("memory")
'''


def test_handlers_still_waiting_after_a_timeout_or_a_kill_leave_the_reactor_clean(tmp_path):
    """trial passes asks that timed out and actors killed while holding a request, in
    both modes: every timer of every actor and client is gone at teardown."""
    (tmp_path / "test_leftovers.py").write_text(TRIAL_MODULE)
    done = subprocess.run([sys.executable, "-m", "twisted.trial", "test_leftovers"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED (successes=4)" in done.stdout
