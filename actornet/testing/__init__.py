"""The cluster kit: test your own actors the way actornet tests its own.

- :class:`Cluster`: a dispatcher and actors in the test's process, on loopback
  sockets or in memory on a Clock, with faults (kill, cut, freeze, delay, drop,
  restart the dispatcher) and waits that never sleep.
- :class:`TwistdNetwork`: a real ``twistd actornet`` subprocess, for the launch path.
- :class:`NatsCluster`: real ``nats-server`` processes on loopback, for federation.
- :class:`FederatedNetwork`: several dispatchers in the test's process, federated
  over a :class:`NatsCluster`, with faults (crash, restart, cut from NATS).
- :func:`replay`: ask the requests a real network's journal recorded again, of
  actors in memory at the recorded times, and list the answers that differ.
- pytest fixtures (``actornet_cluster``, ``actornet_memory_cluster``,
  ``actornet_any_cluster``, ``actornet_twistd``, ``actornet_nats``,
  ``actornet_federation``) come from
  the ``actornet`` pytest plugin; trial users mix :class:`ClusterTestMixin` into
  their ``TestCase``.
"""

from actornet.testing.cluster import MODES, Cluster, ConditionTimeout
from actornet.testing.faults import LinkFault
from actornet.testing.federated import FederatedNetwork
from actornet.testing.memory import AutoJump, MemoryEndpoint, MemoryTransport
from actornet.testing.nats import NatsCluster, NatsClusterFailed
from actornet.testing.recording import Outcome, RecordedRequest, read_recording
from actornet.testing.replay import Difference, replay
from actornet.testing.trial import ClusterTestMixin
from actornet.testing.twistd import ProcessFailed, TwistdNetwork

__all__ = ["MODES", "AutoJump", "Cluster", "ClusterTestMixin", "ConditionTimeout",
           "Difference", "FederatedNetwork", "LinkFault",
           "MemoryEndpoint", "MemoryTransport", "NatsCluster", "NatsClusterFailed",
           "Outcome", "ProcessFailed", "RecordedRequest", "TwistdNetwork", "read_recording",
           "replay"]
