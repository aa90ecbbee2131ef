"""The kit's own doubles keep the interfaces they stand in for."""

from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from actornet.testing.memory import MemoryTransport


def test_the_in_memory_transport_provides_what_a_socket_transport_does():
    """MemoryTransport is checked against ITransport, IConsumer and IPushProducer."""
    transport = MemoryTransport(Clock(), Protocol(), None, None)
    for interface in (ITransport, IConsumer, IPushProducer):
        assert verifyObject(interface, transport)
