"""Starting, watching and stopping the benchmark's processes, and reading /proc.

Every child is started by :class:`Cluster`, which stops it (SIGTERM, then
SIGKILL) when the ``with`` block ends, and asks the kernel to send it SIGTERM
should this process die first (``PR_SET_PDEATHSIG``), so nothing outlives a run.
A child says it is ready by printing one line ``READY {json}`` on stdout, and a
load generator its outcome as ``RESULT {json}``; everything else a child writes
goes to its log file.
"""

import ctypes
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
HOST = "127.0.0.1"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
_live = set()


class ChildFailed(RuntimeError):
    """A child exited, timed out or said something unexpected; the message ends
    with the tail of its log."""


def say(word, data):
    """In a child: tell the bench ``READY`` or ``RESULT`` with ``data``.

    Written straight to file descriptor 1, since some frameworks (autobahn's
    runner) replace ``sys.stdout`` with a logger.
    """
    line = f"{word} {json.dumps(data)}\n".encode()
    while line:
        line = line[os.write(1, line):]


def round_options(parser, *, timed=True):
    """Add what a program that measures in rounds takes: ``--rounds``, ``--watch
    ROLE=PID`` (read by :func:`watched`) and, when ``timed``, ``--warmup`` and
    ``--duration`` (seconds)."""
    if timed:
        parser.add_argument("--warmup", type=float, default=1.0)
        parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--watch", action="append", default=[], metavar="ROLE=PID",
                        help="a process whose CPU seconds to report per round")


def watched(pairs):
    """``--watch ROLE=PID`` options as ``{role: pid}``, with this process as ``client``."""
    return {role: int(pid) for role, pid in (pair.split("=") for pair in pairs)} | {
        "client": os.getpid()}


def raise_fd_limit():
    """Raise this process's soft limit on open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid):
    """User plus system CPU seconds the process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_kib(pid):
    """The resident set size of ``pid`` in KiB."""
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_KIB


def descendants(pid):
    """The pids of every process below ``pid`` (children, their children, ...)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    parents[int(entry)] = int(stat.read().rpartition(b")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def die_with_parent():
    """In a child before exec: get SIGTERM when the bench dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Child:
    """One started process, its stdout read line by line with deadlines."""

    def __init__(self, name, args, log_dir, env=None, cwd=None, group=False):
        self.name = name
        self.group = group
        self.log_path = Path(log_dir) / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [str(a) for a in args], stdout=subprocess.PIPE, stderr=log,
                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, cwd=cwd,
                env=dict(os.environ, **(env or {})), start_new_session=group)
        self.pid = self.popen.pid
        self.info = {}
        self._buffer = b""
        _live.add(self)

    def ready(self, timeout=30.0):
        """Wait for ``READY {json}``; its data is kept as ``self.info`` and returned."""
        self.info = self._expect("READY", timeout)
        return self.info

    def result(self, timeout):
        """Wait for ``RESULT {json}`` and for the process to exit; return the data."""
        data = self._expect("RESULT", timeout)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.stop()
        return data

    def _expect(self, word, timeout):
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(deadline)
            if line is None:
                code = self.popen.poll()
                why = f"exited with {code}" if code is not None else f"timed out after {timeout:g}s"
                self.stop()
                raise ChildFailed(f"{self.name} {why} before {word}{self.log_tail()}")
            if line.startswith(word + " "):
                return json.loads(line[len(word) + 1:])

    def _line(self, deadline):
        stream = self.popen.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace").strip()

    def log_tail(self, lines=15):
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n  " + "\n  ".join(tail)) if tail else ""

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after ``grace`` seconds; a child started with
        ``group=True`` leads a process group of its own, and the whole group
        gets the signals (peers that fork their own workers)."""
        _live.discard(self)
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait()
        if self.group:
            self._signal(signal.SIGKILL)
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def _signal(self, number):
        try:
            if self.group:
                os.killpg(self.pid, number)
            else:
                self.popen.send_signal(number)
        except ProcessLookupError:
            pass


class Cluster:
    """The processes of one scenario: started in order, stopped in reverse."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.children = []

    def start(self, name, args, ready=True, timeout=30.0, **kwargs):
        """Start ``args``; unless ``ready`` is false, wait for its READY line."""
        child = Child(name, args, self.log_dir, **kwargs)
        self.children.append(child)
        if ready:
            child.ready(timeout)
        return child

    def python(self, name, script, *args, python=None, **kwargs):
        """Start one of the bench's scripts with this interpreter (or ``python``)."""
        return self.start(name, [python or PYTHON, BENCH / script, *args], **kwargs)

    def stop(self, child):
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        while self.children:
            self.children.pop().stop()


def stop_all():
    """Stop every child still running (at exit or on a signal)."""
    for child in list(_live):
        child.stop(grace=2.0)
