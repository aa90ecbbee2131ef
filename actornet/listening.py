"""Listening on the configured endpoints, with Twisted's own endpoint service.

Each endpoint gets a ``StreamServerEndpointService`` (from ``strports.service``,
which raises a listen failure at once instead of logging it later), wrapped so
the port it opened can be asked where it is: ``tcp:0`` picks a port, and the
connection file must say which.  A failure is a :class:`ListenFailed` naming
the endpoint; ``unix:`` sockets follow DAOS dRPC's rule, made safe: never start
over a live socket, replace a stale one, never remove anything that is not a
socket.
"""

import ipaddress
import os
import re
import socket
import stat

from twisted.application import strports
from twisted.internet import endpoints
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

log = Logger()


class ListenFailed(Exception):
    """An endpoint could not be listened on; the message names it and says why."""


@implementer(IStreamServerEndpoint)
class _RecordingEndpoint:
    """An endpoint that remembers the port it opened."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.port = None

    def listen(self, factory):
        return self.endpoint.listen(factory).addCallback(self._opened)

    def _opened(self, port):
        self.port = port
        return port


@implementer(IStreamClientEndpoint)
class DescribedEndpoint:
    """A client endpoint that logs as the string it was made from
    (``tcp:host=10.0.0.5:port=5570``), not as ``<TCP4ClientEndpoint object at 0x...>``."""

    def __init__(self, reactor, description):
        self.endpoint = endpoints.clientFromString(reactor, description)
        self.description = description

    def connect(self, factory):
        return self.endpoint.connect(factory)

    def __str__(self):
        return self.description

    __repr__ = __str__


def listener(reactor, description, factory):
    """A service listening on ``description``; ``listener.endpoint.port`` is the
    port once it started."""
    service = strports.service(description, factory, reactor=reactor)
    service.endpoint = _RecordingEndpoint(service.endpoint)
    service.description = description
    return service


def tls_factory(options, factory):
    """``factory`` behind TLS with ``options`` (e.g. requiring client certificates)."""
    return TLSMemoryBIOFactory(options, False, factory)


def start_listening(listeners):
    """Listen on every one of ``listeners`` now, or on none.

    @raise ListenFailed: naming the first endpoint that failed (those already
        listening are closed again).
    """
    started = []
    for service in listeners:
        try:
            if service.description.startswith("unix:"):
                clear_stale_socket(unix_path(service.description))
            service.privilegedStartService()
        except Exception as e:
            for done in started:
                done.stopService()
            raise ListenFailed(f"cannot listen on {service.description}: {e}") from e
        started.append(service)


def clear_stale_socket(path):
    """Remove a stale socket at ``path``; refuse a live one or a non-socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenFailed(f"{path} exists and is not a socket; not touching it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        log.info("removed the stale socket {path}", path=path)
        return
    finally:
        probe.close()
    raise ListenFailed(f"another process is listening on {path}")


def client_endpoint_for(address):
    """A client endpoint string that reaches a listening port from this host."""
    if isinstance(address, IPv4Address):
        host = "127.0.0.1" if address.host == "0.0.0.0" else address.host
        return f"tcp:host={host}:port={address.port}"
    if isinstance(address, IPv6Address):
        host = "\\:\\:1" if address.host == "::" else address.host.replace(":", "\\:")
        return f"tcp6:host={host}:port={address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name.decode() if isinstance(address.name, bytes) else address.name
        return f"unix:path={name}"
    raise ValueError(f"cannot connect back to a listener at {address!r}")


def unix_path(description):
    """The socket path of a ``unix:`` server endpoint description."""
    tokens = re.split(r"(?<!\\):", description[len("unix:"):])
    for token in tokens:
        if token.startswith("address="):
            token = token[len("address="):]
        elif "=" in token:
            continue
        return token.replace("\\:", ":")
    raise ValueError(f"no socket path in {description!r}")


def is_loopback(host):
    """Whether ``host`` (an address or ``localhost``) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listens_on_loopback(description):
    """Whether a server endpoint string is reachable from this host alone: a
    ``unix:`` socket, or a TCP port bound to a loopback ``interface``.  A port
    with no interface listens on every address, so it is not."""
    kind, _, rest = description.partition(":")
    if kind == "unix":
        return True
    for token in re.split(r"(?<!\\):", rest):
        if token.startswith("interface="):
            return is_loopback(token[len("interface="):].replace("\\:", ":"))
    return False
