"""actornet: networks of actors on Twisted, wired in a star around a dispatcher.

The public API in one place::

    from actornet import Actor, handler, DataBag, connect
"""

from importlib.metadata import version

from actornet.actors.actor import Actor
from actornet.actors.context import ActorContext
from actornet.actors.handlers import handler
from actornet.actors.requests import FORWARDED
from actornet.actors.runner import ThreadRunner
from actornet.client import Client, connect
from actornet.protocols.codes import Kind, Status
from actornet.protocols.databag import DataBag
from actornet.protocols.errors import (
    ActorLost,
    ActornetError,
    Cancelled,
    DownstreamTimeout,
    FederationDown,
    NoWorkers,
    ProtocolError,
    RemoteError,
    RequestTimeout,
    Unauthorized,
    UnknownMethod,
    UnknownService,
)
from actornet.protocols.stamp import Stamp

__version__ = version("actornet")

__all__ = [
    "FORWARDED", "Actor", "ActorContext", "ActorLost", "ActornetError", "Cancelled", "Client",
    "DataBag", "DownstreamTimeout", "FederationDown",
    "Kind", "NoWorkers", "ProtocolError", "RemoteError", "RequestTimeout", "Stamp", "Status",
    "ThreadRunner", "Unauthorized", "UnknownMethod", "UnknownService", "connect", "handler",
]
