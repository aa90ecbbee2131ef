"""A real ``twistd -n actornet --config FILE`` process, for tests of the launch path.

    network = await TwistdNetwork(config_path).start()
    client = await connect(connection_file=network.connection_file)
    ...
    await network.stop()

Its output is read as it comes (so its pipe never fills) and a test can wait
for a line without sleeping; signals freeze (SIGSTOP), thaw and kill it.
"""

import os
import signal
import sys
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol


class _Output(ProcessProtocol):
    def __init__(self, network):
        self.network = network
        self._partial = b""

    def outReceived(self, data):
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            self.network._line(line.decode(errors="replace"))

    errReceived = outReceived

    def processEnded(self, reason):
        self.network._ended(reason.value.exitCode, getattr(reason.value, "signal", None))


class ProcessFailed(AssertionError):
    """The process ended, or did not print the awaited line in time."""


class TwistdNetwork:
    """One ``twistd -n actornet`` subprocess.

    @param config: the TOML config to run.
    @param connection_file: where the config makes the dispatcher write its
        connection info (None when it runs no dispatcher).
    """

    def __init__(self, config, *, connection_file=None, cwd=None, reactor=None,
                 twistd=None):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.config = Path(config)
        self.connection_file = connection_file
        self.cwd = cwd or self.config.parent
        self.twistd = twistd or str(Path(sys.executable).parent / "twistd")
        self.lines = []
        self.exit_code = None
        self.exit_signal = None
        self.process = None
        self._waiters = []
        self._exit_waiters = []

    async def start(self, ready="listening on", timeout=30.0):
        """Start the process and wait for a line holding ``ready``."""
        self.process = self.reactor.spawnProcess(
            _Output(self), self.twistd,
            [self.twistd, "-n", "--pidfile=", "actornet", "--config", str(self.config)],
            env=dict(os.environ, PYTHONUNBUFFERED="1"), path=str(self.cwd))
        await self.wait_for_line(ready, timeout)
        return self

    def wait_for_line(self, needle, timeout=30.0):
        """A Deferred firing with the first output line (past or future) holding ``needle``."""
        done = Deferred()
        for line in self.lines:
            if needle in line:
                done.callback(line)
                return done
        if self.exit_code is not None or self.exit_signal is not None:
            done.errback(ProcessFailed(f"twistd ended before printing {needle!r}:\n"
                                       + "\n".join(self.lines[-20:])))
            return done
        timer = self.reactor.callLater(timeout, self._expire, needle, done)
        self._waiters.append((needle, done, timer))
        return done

    def _expire(self, needle, done):
        self._waiters = [w for w in self._waiters if w[1] is not done]
        done.errback(ProcessFailed(f"twistd printed no {needle!r} line:\n"
                                   + "\n".join(self.lines[-20:])))

    def _line(self, line):
        self.lines.append(line)
        waiting, self._waiters = self._waiters, []
        for needle, done, timer in waiting:
            if needle in line:
                timer.cancel()
                done.callback(line)
            else:
                self._waiters.append((needle, done, timer))

    def _ended(self, code, signal_number):
        self.exit_code, self.exit_signal = code, signal_number
        waiting, self._waiters = self._waiters, []
        for needle, done, timer in waiting:
            timer.cancel()
            done.errback(ProcessFailed(f"twistd ended before printing {needle!r}:\n"
                                       + "\n".join(self.lines[-20:])))
        exits, self._exit_waiters = self._exit_waiters, []
        for waiter in exits:
            waiter.callback((code, signal_number))

    @property
    def running(self):
        return self.process is not None and self.exit_code is None and self.exit_signal is None

    def signal(self, number):
        """Send a signal (e.g. ``signal.SIGSTOP`` to freeze it, ``SIGCONT`` to thaw)."""
        if self.running:
            self.process.signalProcess(number)

    def ended(self):
        """A Deferred firing with ``(exit code, signal)`` once the process has ended."""
        if not self.running and self.process is not None:
            done = Deferred()
            done.callback((self.exit_code, self.exit_signal))
            return done
        waiter = Deferred()
        self._exit_waiters.append(waiter)
        return waiter

    async def kill(self):
        """SIGKILL: the process dies at once, as in a crash."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        return await self.ended()

    async def stop(self):
        """SIGTERM: a clean shutdown (drain, remove the connection file)."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        return await self.ended()
