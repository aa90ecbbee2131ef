"""A registration hook for the tests, named in their configs as
``registration_probe:Probe``: inside ``register`` and ``deregister`` it
connects to every endpoint the network says it listens on and writes one JSON
line saying which it reached, so a test can prove when the hooks ran."""

import json
import socket
from urllib.parse import urlsplit

from twisted.internet.defer import succeed
from zope.interface import implementer

from actornet.registration import Bound, IRegistration


@implementer(IRegistration)
class Probe:
    def __init__(self, record, refuse=None):
        self.record = record
        self.refuse = refuse

    def register(self, info):
        self.note("register", info)
        if self.refuse is not None:
            raise RuntimeError(self.refuse)
        return succeed(None)

    def deregister(self, info):
        self.note("deregister", info)
        return succeed(None)

    def note(self, event, info):
        reached = {bound.connect: reaches(bound) for bound in info.listen}
        if info.http is not None:
            reached[info.http] = reaches_http(info.http)
        line = {"event": event, "name": info.name, "http": info.http,
                "actors": list(info.actors), "reached": reached}
        with open(self.record, "a") as record:
            record.write(json.dumps(line) + "\n")


def reaches(bound):
    """Whether a connection to the bound endpoint is accepted now."""
    if bound.port is None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = bound.host
    else:
        probe = socket.socket(socket.AF_INET6 if ":" in bound.host else socket.AF_INET)
        address = (bound.host, bound.port)
    probe.settimeout(5)
    try:
        probe.connect(address)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def reaches_http(url):
    """Whether the monitoring site at ``url`` accepts a connection now."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    return reaches(Bound(url, url, host, port))


def records(path):
    """The lines a probe wrote to ``path``."""
    return [json.loads(line) for line in path.read_text().splitlines()]
