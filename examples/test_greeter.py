# test_greeter.py: run with `python -m pytest test_greeter.py` beside greeter.py
import pytest
import pytest_twisted
from greeter import Greeter

from actornet import ActorLost


@pytest_twisted.ensureDeferred
async def test_hello(actornet_any_cluster):          # runs on sockets, then in memory
    cluster = actornet_any_cluster
    await cluster.add(Greeter("greeter-1"))
    client = await cluster.client()
    answer = await client.ask("greet", "hello", {"name": "ada"})
    assert answer == {"text": "hello, ada"}
    assert [stamp.name for stamp in answer.route][2] == "greeter-1"


@pytest_twisted.ensureDeferred
async def test_a_dying_greeter_fails_its_asker(actornet_memory_cluster):
    cluster = actornet_memory_cluster
    await cluster.add(Greeter("greeter-1"))
    client = await cluster.client()
    cluster.freeze("greeter-1")                       # it stops reading ...
    pending = client.ask("greet", "shout", {"name": "ada"}, timeout=60)
    await cluster.wait_for(lambda: cluster.peer("greeter-1").in_flight == 1)
    await cluster.kill("greeter-1")                   # ... and dies holding the request
    with pytest.raises(ActorLost):
        await pending


@pytest_twisted.ensureDeferred
async def test_ten_minutes_later_in_no_time(actornet_memory_cluster):
    cluster = actornet_memory_cluster                  # a Clock that runs ahead by itself
    await cluster.add(Greeter("greeter-1"))
    client = await cluster.client()
    answer = await client.ask("greet", "later", {"name": "ada", "seconds": 600},
                              timeout=900)
    assert answer == {"text": "hello again, ada"}
