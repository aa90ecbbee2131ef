"""A client for scripts and tests: an actor that serves nothing and only asks.

    client = await connect("tcp:host=127.0.0.1:port=5570", token="...")
    answer = await client.ask("math", "add", {"a": 1, "b": 2})
    await client.close()
"""

import os

from twisted.internet import endpoints
from twisted.internet.defer import Deferred, succeed

from actornet import connfile
from actornet.actors.actor import Actor
from actornet.actors.link import LinkSettings
from actornet.actors.service import connect_once
from actornet.config import connection_file_path


class Client(Actor):
    """An actor with no services, connected once (no reconnect)."""

    def __init__(self, name=None, clock=None):
        super().__init__(name=name or f"client-{os.getpid()}-{id(self):x}", services=(),
                         clock=clock)
        self._closed = None

    def detached(self, link, reason):
        super().detached(link, reason)
        closed, self._closed = self._closed, None
        if closed is not None:
            closed.callback(None)

    def close(self):
        """Leave the network; the Deferred fires once the connection is closed."""
        if self.link is None:
            return succeed(None)
        self._closed = Deferred()
        self.link.leave()
        return self._closed


def connect(endpoint=None, token=None, *, name=None, reactor=None, connection_file=None):
    """Connect a :class:`Client` to a dispatcher.

    @param endpoint: a client endpoint string or object; when None, the
        dispatcher's connection-info file tells where (and the token).
    @return: a Deferred firing with the registered client, or failing with
        the dispatcher's refusal (e.g. ``Unauthorized``) or the connection error.
    """
    if reactor is None:
        from twisted.internet import reactor
    if endpoint is None:
        info = connfile.read(connection_file_path(connection_file))
        endpoint = info["endpoint"]
        token = token if token is not None else info.get("token")
    if isinstance(endpoint, str):
        endpoint = endpoints.clientFromString(reactor, endpoint)
    client = Client(name=name, clock=reactor)
    connecting = connect_once(client, endpoint, reactor, LinkSettings(token=token))
    return connecting.addCallback(lambda _: client)
