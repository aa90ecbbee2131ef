# test_incident.py: run with `python -m pytest test_incident.py` beside greeter.py and incident.db
import pytest_twisted
from greeter import Greeter

from actornet.testing import replay


@pytest_twisted.ensureDeferred
async def test_the_incident_replays_as_recorded():
    differences = await replay("incident.db", actors=[Greeter("greeter-1")])
    assert differences == []                  # else: key, service, method, at, both answers
