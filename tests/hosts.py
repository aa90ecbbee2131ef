"""Several hosts on one Linux machine, for integration tests that need real
networks: each host is a network namespace with its own loopback, ports and
address, and a bridge in the root namespace joins them like a switch.

    with Hosts(3) as hosts:
        subprocess.Popen(hosts.command(1, ["nats-server", "-a", hosts.address(1)]))
        ...

Host ``i`` (numbered from 1) has ``eth0`` at the ``i``-th address of the
network; the bridge holds the network's last usable address, so the test
process, in the root namespace, reaches every host through it.  A process
bound to ``127.0.0.1`` in one host cannot be reached from another.

Creating namespaces, bridges and veth pairs needs root (``CAP_NET_ADMIN``)
and iproute2's ``ip``; :func:`unavailable_reason` says why a test must skip.
"""

import functools
import ipaddress
import itertools
import os
import shutil
import subprocess
import sys

IP = shutil.which("ip", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))

_instances = itertools.count(1)


class HostsError(RuntimeError):
    """An ``ip`` command failed; the message quotes the command and its stderr."""


def _ip(*args):
    """Run ``ip ARGS``; raise :class:`HostsError` with ip's own complaint if it fails."""
    argv = [IP, *args]
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=10)
    except subprocess.CalledProcessError as failure:
        reason = failure.stderr.strip() or f"exit status {failure.returncode}"
        raise HostsError(f"`ip {' '.join(args)}` failed: {reason}") from None
    except subprocess.TimeoutExpired:
        raise HostsError(f"`ip {' '.join(args)}` did not finish in 10 s") from None


class Hosts:
    """``count`` network namespaces on one bridge, created at once.

    Names are unique to this process and instance (namespaces
    ``an-<pid>-<instance>-<i>``), so parallel runs do not collide; the network
    must not overlap one the machine already uses, hence the parameter.
    Raises :class:`HostsError` if any step fails, after removing what it made.
    """

    def __init__(self, count, network="10.213.0.0/24"):
        self.network = ipaddress.ip_network(network)
        usable = list(self.network.hosts())
        if not 1 <= count < len(usable):
            raise ValueError(f"{network} has room for 1 to {len(usable) - 1} hosts, not {count}")
        self.count = count
        self.bridge_address = str(usable[-1])
        self._addresses = [str(address) for address in usable[:count]]
        instance = next(_instances)
        self._namespaces = [f"an-{os.getpid()}-{instance}-{i}" for i in range(1, count + 1)]
        # Interface names are limited to 15 characters: the pid in hex keeps them short.
        tag = f"an{os.getpid():x}-{instance}"
        self._bridge = f"{tag}b"
        self._ports = [f"{tag}v{i}" for i in range(1, count + 1)]
        if len(self._ports[-1]) > 15:
            raise ValueError(f"too many hosts for short interface names: {self._ports[-1]}")
        self._undo = []
        try:
            self._create()
        except BaseException as failure:
            try:
                self.close()
            except HostsError as leftover:
                failure.add_note(f"and cleaning up failed too: {leftover}")
            raise

    def _create(self):
        prefix = self.network.prefixlen
        _ip("link", "add", self._bridge, "type", "bridge")
        self._undo.append(("link", "del", self._bridge))
        _ip("addr", "add", f"{self.bridge_address}/{prefix}", "dev", self._bridge)
        _ip("link", "set", self._bridge, "up")
        for namespace, port, address in zip(self._namespaces, self._ports, self._addresses,
                                            strict=True):
            _ip("netns", "add", namespace)
            self._undo.append(("netns", "del", namespace))
            _ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            self._undo.append(("link", "del", port))
            _ip("link", "set", port, "master", self._bridge, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

    def namespace(self, i):
        """The name of host ``i``'s network namespace (for ``ip netns``)."""
        return self._namespaces[self._index(i)]

    def address(self, i):
        """Host ``i``'s IPv4 address, as a string."""
        return self._addresses[self._index(i)]

    def command(self, i, argv):
        """``argv`` run inside host ``i``: a new argv for ``subprocess`` or
        ``reactor.spawnProcess``.  ``ip netns exec`` replaces itself with the
        program, so the process's pid and signals are the program's own.
        """
        return [IP, "netns", "exec", self.namespace(i), *argv]

    def close(self):
        """Remove the veth pairs, namespaces and bridge; safe to call again.

        Stop processes in the hosts first: one still running keeps its
        namespace's network stack alive, unnamed, until it exits.
        Raises :class:`HostsError` naming whatever could not be removed.
        """
        undo, self._undo = self._undo, []
        failures = []
        for args in reversed(undo):
            try:
                _ip(*args)
            except HostsError as failure:
                failures.append(str(failure))
        if failures:
            raise HostsError("; ".join(failures))

    def _index(self, i):
        if not 1 <= i <= self.count:
            raise IndexError(f"hosts are numbered 1 to {self.count}, not {i}")
        return i - 1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


@functools.cache
def unavailable_reason():
    """None if :class:`Hosts` can be made on this machine, else a one-line reason
    (for ``pytest.skip``).  Tries once per process, by making one host.
    """
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return f"network namespaces need root, and this runs as uid {os.geteuid()}"
    if IP is None:
        return "the ip command (iproute2) is not installed"
    try:
        Hosts(1).close()
    except HostsError as failure:
        return f"cannot make network namespaces here: {failure}"
    return None
