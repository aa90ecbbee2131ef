"""systemd's notify protocol: the first registration hook, used whenever systemd
started the network as a ``Type=notify`` unit (``NOTIFY_SOCKET`` is set).

It says ``READY=1`` (with ``MAINPID=``) once every listener is listening,
keeps a ``STATUS=`` line with the actor, connection and in-flight counts
(``systemctl status`` shows it), pings ``WATCHDOG=1`` every half
``WATCHDOG_USEC`` from the reactor's own loop (so a stuck reactor is what
systemd notices), and says ``STOPPING=1`` when the network starts to stop.

Written on the standard library: each message is one datagram to the unix
socket ``NOTIFY_SOCKET`` names, about twenty lines.  PyPI's ``sdnotify``
(last released in 2017) sends on a blocking socket and swallows every error,
and ``systemd-python`` needs libsystemd's headers to build; neither is worth
a dependency.  A full or gone socket must never block or stop the reactor,
so sends are non-blocking and a failed one is logged and dropped.
"""

import os
import socket

from twisted.internet.defer import succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from actornet.registration import Hook, IRegistration
from actornet.tables import ConfigError

log = Logger()

STATUS_INTERVAL = 2.0
"""Seconds between looks at the counts; ``STATUS=`` is sent only when they changed."""


def notify_address(value):
    """The socket address ``NOTIFY_SOCKET``'s ``value`` names: a path, or an
    abstract name (``@name``, sent with a leading NUL byte).

    @raise ValueError: for anything else (systemd's ``vsock:`` addresses).
    """
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise ValueError(f"NOTIFY_SOCKET={value!r} is not a unix socket path or @name")


class NotifySocket:
    """Sends notify messages to ``address``, never blocking.

    A message that cannot go is dropped; the first of a run of failures is
    logged (not every watchdog ping while systemd's socket is gone).
    """

    def __init__(self, address):
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.socket.setblocking(False)
        self.failing = False

    def send(self, *lines):
        """Send ``lines`` as one message; False when it could not go."""
        try:
            self.socket.sendto("\n".join(lines).encode(), self.address)
        except OSError as e:
            if not self.failing:
                log.warn("actornet: systemd notify message {lines!r} not sent: {why}",
                         lines=lines[0], why=e.strerror or e)
            self.failing = True
            return False
        self.failing = False
        return True

    def close(self):
        self.socket.close()


def status_line(summary):
    """``3 actors, 5 connections, 0 in flight`` from a snapshot's summary."""
    return (f"{summary['actors']} actors, {summary['connections']} connections, "
            f"{summary['in_flight']} in flight")


@implementer(IRegistration)
class SystemdNotifier:
    """The notify protocol as a registration hook.

    @param notify: a :class:`NotifySocket` (or anything with ``send(*lines)``).
    @param clock: drives the watchdog pings and the status looks.
    @param watchdog_interval: seconds between ``WATCHDOG=1`` pings, or None.
    @param status_interval: seconds between looks at the counts.
    """

    def __init__(self, notify, clock, watchdog_interval=None, status_interval=STATUS_INTERVAL):
        self.notify = notify
        self.clock = clock
        self.watchdog_interval = watchdog_interval
        self.status_interval = status_interval
        self.status = None
        self._snapshot = None
        self._loops = []

    def register(self, info):
        self._snapshot = info.snapshot
        self.status = self._status()
        self.notify.send("READY=1", f"MAINPID={info.pid}", f"STATUS={self.status}")
        self._every(self.status_interval, self.update_status)
        if self.watchdog_interval is not None:
            self._every(self.watchdog_interval, self.notify.send, "WATCHDOG=1", now=True)
        return succeed(None)

    def deregister(self, info):
        for loop in self._loops:
            loop.stop()
        self._loops = []
        self.notify.send("STOPPING=1", "STATUS=stopping: draining requests in flight")
        return succeed(None)

    def update_status(self):
        """Send ``STATUS=`` if the counts changed since it was last sent."""
        status = self._status()
        if status != self.status and self.notify.send(f"STATUS={status}"):
            self.status = status

    def _status(self):
        return status_line(self._snapshot().summary())

    def _every(self, seconds, function, *args, now=False):
        loop = LoopingCall(function, *args)
        loop.clock = self.clock
        loop.start(seconds, now=now).addErrback(
            lambda failure: log.failure("actornet: systemd notify loop stopped", failure))
        self._loops.append(loop)


def from_environment(environ, clock, pid=None):
    """The systemd :class:`~actornet.registration.Hook` in a tuple when systemd
    asked for notifications, else an empty tuple.

    Takes ``NOTIFY_SOCKET`` (and ``WATCHDOG_USEC``, ``WATCHDOG_PID``) out of
    ``environ``, as ``sd_notify`` does when asked to: processes this one starts
    must not speak for it.  The watchdog is kept only when ``WATCHDOG_PID`` is
    unset or is ``pid`` (ours by default).

    @raise ConfigError: when ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` or
        ``WATCHDOG_PID`` cannot be used.
    """
    value = environ.pop("NOTIFY_SOCKET", None)
    usec = environ.pop("WATCHDOG_USEC", None)
    watchdog_pid = environ.pop("WATCHDOG_PID", None)
    if not value:
        return ()
    try:
        address = notify_address(value)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    interval = None
    if usec is not None:
        if not usec.isdigit() or int(usec) == 0:
            raise ConfigError(f"WATCHDOG_USEC={usec!r} is not a positive number of "
                              "microseconds")
        if watchdog_pid is not None and not watchdog_pid.isdigit():
            raise ConfigError(f"WATCHDOG_PID={watchdog_pid!r} is not a process id")
        if watchdog_pid is None or int(watchdog_pid) == (pid or os.getpid()):
            interval = int(usec) / 2 / 1e6
    notifier = SystemdNotifier(NotifySocket(address), clock, interval)
    return (Hook("systemd", notifier, required=False, timeout=5.0),)


def warn_when_not_spoken(environ):
    """Say in the log why a process without a dispatcher never tells systemd
    it is ready: a ``Type=notify`` unit would otherwise time out in silence."""
    if environ.get("NOTIFY_SOCKET"):
        log.warn("actornet: NOTIFY_SOCKET is set, but only a config with a [dispatcher] "
                      "speaks systemd's notify protocol: run this one as Type=simple")
