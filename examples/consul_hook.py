# consul_hook.py: name it in a config as [[registration]] class = "consul_hook:ConsulRegistration"
import json
from io import BytesIO

from twisted.internet.defer import Deferred
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers
from zope.interface import implementer

from actornet.registration import IRegistration


@implementer(IRegistration)
class ConsulRegistration:
    """Registers the dispatcher with the local Consul agent as the service
    "actornet", with a TCP health check on its first listener."""

    def __init__(self, agent="http://127.0.0.1:8500", check_interval=10):
        if check_interval <= 0:
            raise ValueError(f"check_interval must be positive, got {check_interval}")
        self.agent = agent.rstrip("/")
        self.check_interval = check_interval

    def register(self, info):
        first = info.listen[0]
        return self.put("/v1/agent/service/register", {
            "ID": f"actornet-{info.name}", "Name": "actornet", "Tags": [info.name],
            "Address": first.host, "Port": first.port,
            "Meta": {"version": info.version, "pid": str(info.pid)},
            "Check": {"TCP": f"{first.host}:{first.port}",
                      "Interval": f"{self.check_interval}s"},
        })

    def deregister(self, info):
        return self.put(f"/v1/agent/service/deregister/actornet-{info.name}")

    def put(self, path, document=None):
        return Deferred.fromCoroutine(self._put(path, document))

    async def _put(self, path, document):
        from twisted.internet import reactor  # here: the config is read before twistd picks it

        body = FileBodyProducer(BytesIO(json.dumps(document).encode())) if document else None
        response = await Agent(reactor).request(
            b"PUT", (self.agent + path).encode(),
            Headers({b"Content-Type": [b"application/json"]}), body)
        if response.code != 200:
            answer = await readBody(response)
            raise RuntimeError(f"Consul answered {response.code}: {answer.decode()[:200]}")

