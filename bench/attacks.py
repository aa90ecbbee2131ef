"""Hostile peers and slow readers: what five attacks cost the dispatcher and a bystander.

    python bench/attacks.py --python /work/main/.venv/bin/python
    python bench/attacks.py --python /tmp/before/.venv/bin/python --only slow-reader,many-asks
    python bench/attacks.py --list

Measures findings 1, 2, 3, 4 and 6 of the issue "Hostile peers and slow
readers".  For each attack: the dispatcher process's RSS in MiB just before the
attack, at its peak from the attack's start to the end of a 3 s settle after it
(the higher of the kernel's VmHWM, reset when the attack starts, and samples
every 50 ms), and after that settle; and the ask latency of a bystander (the
real client, ``actornet.connect`` then ``ask("echo", "echo", ..., timeout=5)``
every 10 ms, one at a time, timed with ``time.perf_counter``) while the attack
runs, against its p50 alone during the 5 s before it.  Timeouts and other
errors count as failures (a bystander that lost its connection connects again
before its next ask); p50/p99 are over the asks that succeeded.  Each line also
says which innocent actors the dispatcher lost (from its log), whether it
survived, and what the attacker saw (``detail``; ``notes`` in a sentence).

Each attack gets a fresh network: a dispatcher process (``token = "t"``,
``keepalive_interval = 1.0``, so a 3 s holdtime) and an actors process with
``echo-1`` (service ``echo``: ``echo`` returns the bag, ``big`` returns
``{"blob": size bytes}``) and ``stall`` (service ``stall``: never answers),
from a module written beside the temporary configs.  Processes run as in
run.py (``procs.Cluster``; configs by ``nodes.write_config``, run by
``nodes.main``), listen and connect on 127.0.0.1 only and are stopped at the
end of each attack.  The attacker is a process of its own on raw sockets;
frames are built by hand (``u32 N | u32 E | envelope CBOR | body CBOR``, struct
and cbor2), and nothing here imports more of actornet than ``connect``,
``Actor`` and ``handler``, so it runs the same against the current layout
(``actornet.protocols``, ...) and the older one (top-level ``protocols``, ...).

``--python PATH`` re-executes the whole script under PATH: dispatcher, actors,
attackers and bystander all use the actornet installed there (no PYTHONPATH is
set, unlike run.py's ``--dispatcher-python``).  A dispatcher whose RSS passes
``--rss-cap-mib`` (default 12288) is killed so that it cannot take the machine
down; its line says so.  ``--mmap-threshold 65536`` runs the dispatcher with
glibc's mmap threshold there, so that its 64 KiB read buffers are given back to
the system when freed: RSS that stays up without it but comes back with it is
kept by the allocator for reuse, not leaked.

The attacks (each within about a minute):

- ``stalled-partial-frames`` (finding 1): 4 rounds of 50 connections that
  register, send the header and first 15,000,000 bytes of a 16,000,000-byte
  frame and stall until the dispatcher drops them (the holdtime); RSS after
  each round and after all.
- ``huge-envelope`` (finding 2): 8 connections at once, unregistered, each
  sending one frame whose envelope is a CBOR array of 15 million empty maps.
- ``target-list`` (finding 3): one registered client asks ``echo.echo`` with
  ``tgt = ["echo-1"] * 12000``.
- ``slow-reader`` (finding 4): one registered client with a 4 KiB receive
  buffer asks ``echo.big`` ten times for 4 MiB and never reads for 15 s (it
  sends a KEEPALIVE every 0.5 s, so silence alone cannot get it dropped).
- ``many-asks`` (finding 6): one registered client sends 100,000 asks to
  ``stall`` (ttl 3600) as fast as it can, reading what comes back, then
  holds the connection until 10 s have passed.

stdout gets one JSON line per attack, stderr a table; the configs and logs of
a run stay in a temporary folder only with ``--keep`` or when something failed.
"""

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from procs import HOST, ChildFailed, Cluster, cpu_seconds, raise_fd_limit, rss_kib, say, stop_all
from stats import percentile

TOKEN = "t"
KEEPALIVE_INTERVAL = 1.0
MIB = 1024 * 1024
REGISTER, READY, REQUEST, RESPONSE, KEEPALIVE, ERROR, REFUSED = 1, 2, 3, 4, 6, 8, 11
EMPTY_MAP = b"\xa0"
_HEADER = struct.Struct(">II")

NORMAL_SECONDS = 5.0
SETTLE_SECONDS = 3.0
MIN_WINDOW = 10.0
ASK_INTERVAL = 0.01
ASK_TIMEOUT = 5.0

STALLED_ROUNDS, STALLED_CONNECTIONS = 4, 50
STALLED_FRAME, STALLED_SENT = 16_000_000, 15_000_000
HUGE_CONNECTIONS, HUGE_ITEMS = 8, 15_000_000
TARGETS = 12_000
SLOW_ASKS, SLOW_ANSWER, SLOW_SECONDS, SLOW_RCVBUF = 10, 4 * MIB, 15.0, 4096
MANY_ASKS, MANY_BATCH = 100_000, 1000

ACTORS_MODULE = '''"""The actors bench/attacks.py runs: an innocent echo and a stall."""

from twisted.internet.defer import Deferred

from actornet import Actor, handler


class Echo(Actor):
    services = ("echo",)

    @handler
    def echo(self, bag):
        return bag

    @handler
    def big(self, bag):
        return {"blob": b"x" * bag["size"]}


class Stall(Actor):
    services = ("stall",)

    @handler
    def stall(self, bag):
        return Deferred()
'''
REEXEC_GUARD = "ACTORNET_ATTACKS_PYTHON"


# -- frames, by hand ---------------------------------------------------------------


def frame(envelope, body=b""):
    """One frame: ``u32 N | u32 E | envelope CBOR | body``."""
    import cbor2

    head = cbor2.dumps(envelope)
    return _HEADER.pack(4 + len(head) + len(body), len(head)) + head + body


def request(rid, service, method, *, target="any", ttl=None, body=EMPTY_MAP):
    envelope = {"k": REQUEST, "id": rid, "svc": service, "m": method, "tgt": target, "r": []}
    if ttl is not None:
        envelope["ttl"] = ttl
    return frame(envelope, body)


def split_frames(buffer):
    """The ``(envelope, body length)`` of each whole frame at the front of
    ``buffer``, and the bytes after them (an undecodable envelope reads as {})."""
    import cbor2

    found, offset = [], 0
    while len(buffer) - offset >= 8:
        length, env_length = _HEADER.unpack_from(buffer, offset)
        if len(buffer) - offset < 4 + length:
            break
        try:
            envelope = cbor2.loads(buffer[offset + 8:offset + 8 + env_length])
        except Exception:
            envelope = {}
        found.append((envelope if isinstance(envelope, dict) else {}, length - 4 - env_length))
        offset += 4 + length
    return found, buffer[offset:]


def what_it_said(envelope):
    """A refusal or error answer, in a few words: status and message."""
    error = envelope.get("err") or ["", ""]
    return f"{envelope.get('st')} {str(error[-1])[:90]}"


# -- raw connections -----------------------------------------------------------------


def register(port, name, rcvbuf=None, timeout=10.0):
    """A socket registered as ``name`` with the token (READY received)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((HOST, port))
    sock.sendall(frame({"k": REGISTER, "name": name, "svcs": [], "tok": TOKEN}))
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"{name}: the dispatcher closed before READY")
        found, buffer = split_frames(buffer + chunk)
        for envelope, _ in found:
            if envelope.get("k") == READY:
                return sock
            if envelope.get("k") in (ERROR, REFUSED):
                raise RuntimeError(f"{name}: refused: {what_it_said(envelope)}")


def send_bounded(sock, data, deadline, piece=MIB):
    """Send ``data`` until done, an error or ``deadline``: (bytes sent, why it stopped)."""
    view, sent = memoryview(data), 0
    try:
        while sent < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                return sent, "deadline"
            sock.settimeout(left)
            sent += sock.send(view[sent:sent + piece])
    except OSError as e:
        return sent, type(e).__name__
    return sent, None


def wait_for_close(sock, deadline):
    """Read and drop what arrives until the dispatcher closes ``sock``: (when it
    closed, by time.monotonic(), or None at ``deadline``; the errors it said)."""
    buffer, said = b"", []
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:
            return time.monotonic(), said
        if not chunk:
            return time.monotonic(), said
        found, buffer = split_frames(buffer + chunk)
        said += [what_it_said(e) for e, _ in found if e.get("k") in (ERROR, REFUSED)]
    return None, said


def one_connection(port, data, deadline, name=None):
    """Connect (and register as ``name``), send ``data``, wait to be dropped."""
    started = time.monotonic()
    try:
        if name is None:
            sock = socket.create_connection((HOST, port), timeout=10.0)
        else:
            sock = register(port, name)
    except (OSError, RuntimeError) as e:
        return {"failed": f"{type(e).__name__}: {e}"[:120]}
    with sock:
        sent, stopped = send_bounded(sock, data, deadline)
        sent_at = time.monotonic()
        closed_at, said = wait_for_close(sock, deadline)
    return {"sent": sent, "stopped": stopped, "send_s": sent_at - started,
            "dropped_after_s": None if closed_at is None else closed_at - sent_at, "said": said}


def connections(port, data, count, deadline, names=None):
    """``count`` connections at once, each run by :func:`one_connection`."""
    names = names or [None] * count
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda name: one_connection(port, data, deadline, name), names))


def summarize(results):
    """What happened to a batch of connections, in a dict and a sentence."""
    failed = [r["failed"] for r in results if "failed" in r]
    done = [r for r in results if "failed" not in r]
    drops = sorted(r["dropped_after_s"] for r in done if r["dropped_after_s"] is not None)
    said = Counter(s for r in done for s in r["said"])
    stopped = Counter(r["stopped"] for r in done if r["stopped"])
    out = {"connections": len(results), "connect_failed": len(failed),
           "mb_sent": round(sum(r["sent"] for r in done) / 1e6, 1),
           "send_stopped": dict(stopped), "dropped": len(drops),
           "not_dropped": len(done) - len(drops),
           "dropped_after_s_median": round(statistics.median(drops), 2) if drops else None,
           "dropped_after_s_max": round(drops[-1], 2) if drops else None,
           "said": dict(said.most_common(3))}
    if failed:
        out["first_connect_failure"] = failed[0]
    text = (f"{len(drops)}/{len(results)} dropped {out['dropped_after_s_median']} s "
            f"(max {out['dropped_after_s_max']}) after sending; {out['mb_sent']} MB sent")
    if stopped:
        text += f"; sends cut short: {dict(stopped)}"
    if said:
        words, times = said.most_common(1)[0]
        text += f"; {times} told: {words}"
    if failed:
        text += f"; {len(failed)} could not connect/register ({failed[0]})"
    out["summary"] = text
    return out


def hold_until(moment):
    time.sleep(max(0.0, moment - time.monotonic()))


def hold_alive(sock, until):
    """Stay registered until ``until``: a KEEPALIVE every 0.5 s (a registered peer
    that says nothing is dropped after the holdtime, which would end the attack)."""
    while time.monotonic() < until:
        send_keepalive(sock)
        hold_until(min(until, time.monotonic() + 0.5))


def send_keepalive(sock):
    """One KEEPALIVE; False if the connection is gone."""
    try:
        sock.sendall(frame({"k": KEEPALIVE}))
    except TimeoutError:
        return True
    except OSError:
        return False
    return True


# -- the attacks (in the attacker's process) ---------------------------------------------


def stalled_partial_frames(port, round_no):
    """One round: 50 registered connections, each 15 MB into a 16 MB frame, then silent."""
    head = request(1, "echo", "echo", body=b"")[8:]
    data = (_HEADER.pack(STALLED_FRAME, len(head)) + head).ljust(STALLED_SENT, b"\0")
    names = [f"stalled-{round_no}-{i}" for i in range(STALLED_CONNECTIONS)]
    results = connections(port, data, STALLED_CONNECTIONS, time.monotonic() + 45, names)
    return dict(summarize(results), round=round_no)


def huge_envelope(port):
    """Eight unregistered connections at once, each one 15 MB envelope of empty maps."""
    started = time.monotonic()
    envelope = b"\x9a" + struct.pack(">I", HUGE_ITEMS) + EMPTY_MAP * HUGE_ITEMS
    data = _HEADER.pack(4 + len(envelope), len(envelope)) + envelope
    result = summarize(connections(port, data, HUGE_CONNECTIONS, started + 60))
    hold_until(started + MIN_WINDOW)
    return result


def target_list(port):
    """One ask of ``echo.echo`` naming ``echo-1`` 12,000 times."""
    sock = register(port, "target-lister")
    started = time.monotonic()
    data = request(1, "echo", "echo", target=["echo-1"] * TARGETS, ttl=30.0)
    with sock:
        sent, stopped = send_bounded(sock, data, started + 30)
        answer = await_answer(sock, 1, started + 45)
        hold_alive(sock, started + MIN_WINDOW)
    answer.update(frame_bytes=len(data), sent=sent, send_stopped=stopped)
    answer["summary"] = (f"{len(data) / 1e3:.0f} kB request; " + (
        f"answered {answer['status']} after {answer['seconds']:.2f} s "
        f"({answer['body_bytes']} body bytes{', ' + answer['said'] if answer['said'] else ''})"
        if "status" in answer else answer["outcome"]))
    return answer


def await_answer(sock, rid, deadline):
    """The first RESPONSE (or ERROR) to ``rid``: its status, delay and body size
    (a KEEPALIVE every 0.5 s meanwhile)."""
    started, buffer = time.monotonic(), b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(min(left, 0.5))
        try:
            chunk = sock.recv(MIB)
        except TimeoutError:
            send_keepalive(sock)
            continue
        except OSError as e:
            return {"outcome": f"connection lost: {type(e).__name__}"}
        if not chunk:
            return {"outcome": f"closed by the dispatcher after {time.monotonic() - started:.2f} s"}
        found, buffer = split_frames(buffer + chunk)
        for envelope, body_length in found:
            if envelope.get("k") in (RESPONSE, ERROR, REFUSED) and envelope.get("id", rid) == rid:
                said = what_it_said(envelope) if envelope.get("err") else ""
                return {"status": envelope.get("st"), "seconds": time.monotonic() - started,
                        "body_bytes": body_length, "said": said}
    return {"outcome": "no answer within the deadline"}


def slow_reader(port):
    """Ten asks for 4 MiB each, then 15 s of KEEPALIVEs and never a recv."""
    import cbor2

    sock = register(port, "slow-reader", rcvbuf=SLOW_RCVBUF)
    rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    body = cbor2.dumps({"size": SLOW_ANSWER})
    started = time.monotonic()
    sock.settimeout(10.0)
    sock.sendall(b"".join(request(rid, "echo", "big", ttl=60.0, body=body)
                          for rid in range(1, SLOW_ASKS + 1)))
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    dropped = None
    with sock:
        while dropped is None and time.monotonic() < started + SLOW_SECONDS:
            time.sleep(0.5)
            dropped = keepalive_or_dropped(sock, poller, started)
    hold_until(started + SLOW_SECONDS)
    text = ("never dropped by the dispatcher" if dropped is None
            else f"dropped by the dispatcher after {dropped:.1f} s")
    return {"asks": SLOW_ASKS, "answer_bytes": SLOW_ANSWER, "rcvbuf": rcvbuf,
            "dropped_after_s": dropped,
            "summary": f"{SLOW_ASKS} x {SLOW_ANSWER // MIB} MiB asked, rcvbuf {rcvbuf}; {text}"}


def keepalive_or_dropped(sock, poller, started):
    """Send one KEEPALIVE; the seconds since ``started`` if the dispatcher has hung up
    (seen by poll, without reading)."""
    sock.settimeout(1.0)
    if poller.poll(0) or not send_keepalive(sock):
        return time.monotonic() - started
    return None


def many_asks(port):
    """100,000 asks to ``stall`` as fast as they go, answers read and counted."""
    sock = register(port, "many-asker")
    answers, stop = Counter(), threading.Event()
    reader = threading.Thread(target=count_answers, args=(sock, answers, stop), daemon=True)
    reader.start()
    started = time.monotonic()
    sent, stopped = 0, None
    for first in range(1, MANY_ASKS + 1, MANY_BATCH):
        data = b"".join(request(rid, "stall", "stall", ttl=3600.0)
                        for rid in range(first, first + MANY_BATCH))
        _, stopped = send_bounded(sock, data, started + 45)
        if stopped:
            break
        sent += MANY_BATCH
    send_s = time.monotonic() - started
    sock.settimeout(0.5)
    hold_alive(sock, max(started + MIN_WINDOW, time.monotonic() + 3.0))
    stop.set()
    reader.join(5.0)
    sock.close()
    counted = dict(answers)
    text = f"{sent:,} asks sent in {send_s:.1f} s; answers by status: {counted or 'none'}"
    if stopped:
        text += f"; sending stopped: {stopped}"
    return {"asks_sent": sent, "send_s": round(send_s, 2), "send_stopped": stopped,
            "answers": counted, "summary": text}


def count_answers(sock, answers, stop):
    """Read answers until ``stop`` or the connection ends, counting them by status."""
    buffer, started = b"", time.monotonic()
    while not stop.is_set():
        try:
            chunk = sock.recv(MIB)
        except TimeoutError:
            continue
        except OSError:
            if not stop.is_set():
                answers[f"connection lost at {time.monotonic() - started:.1f} s"] += 1
            return
        if not chunk:
            answers[f"closed by the dispatcher at {time.monotonic() - started:.1f} s"] += 1
            return
        found, buffer = split_frames(buffer + chunk)
        for envelope, _ in found:
            if envelope.get("k") != KEEPALIVE:
                answers[str(envelope.get("st", envelope.get("k")))] += 1


ATTACKERS = {"stalled-partial-frames": stalled_partial_frames, "huge-envelope": huge_envelope,
             "target-list": target_list, "slow-reader": slow_reader, "many-asks": many_asks}


def attacker(name, port, *extra):
    say("RESULT", ATTACKERS[name](int(port), *(int(x) for x in extra)))


# -- the bystander and the nodes (child processes) -----------------------------------------


def bystander(endpoint, stop_file):
    """Ask ``echo.echo`` every 10 ms until ``stop_file`` exists; RESULT: every ask
    as ``[start (time.monotonic), ms, error or None]``, one message per kind of
    error.  A client that lost its connection connects again before its next
    ask (that ask's time includes it; a failed connect counts as a failed ask,
    and then it waits 0.5 s)."""
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    task.react(lambda reactor: Deferred.fromCoroutine(_bystand(reactor, endpoint,
                                                               Path(stop_file))))


async def _bystand(reactor, endpoint, stop_file):
    from twisted.internet.task import deferLater

    client = await _connect(reactor, endpoint)
    say("READY", {"pid": os.getpid()})
    samples, examples, seq, reconnects = [], {}, 0, 0
    while not stop_file.exists():
        seq += 1
        began, t0, error, step = time.monotonic(), time.perf_counter(), None, "ask"
        try:
            if not client.connected:
                reconnects, step = reconnects + 1, "reconnect"
                client = await _connect(reactor, endpoint)
                step = "ask"
            await client.ask("echo", "echo", {"seq": seq, "pad": "x" * 64}, timeout=ASK_TIMEOUT)
        except Exception as e:
            error = f"{step}: {type(e).__name__}"
            examples.setdefault(error, str(e)[:200])
        took = time.perf_counter() - t0
        samples.append([round(began, 4), round(took * 1e3, 3), error])
        pause = ASK_INTERVAL - took if client.connected else 0.5
        await deferLater(reactor, max(0.0, pause), lambda: None)
    say("RESULT", {"samples": samples, "error_examples": examples, "reconnects": reconnects})
    client.close()


def _connect(reactor, endpoint):
    """The real client, registered within ASK_TIMEOUT seconds."""
    import actornet

    return actornet.connect(endpoint, TOKEN).addTimeout(ASK_TIMEOUT, reactor)


def node(config, log):
    """Run ``config`` through ``nodes.main``, finding the dispatcher's port in a way
    both layouts of ``actornet.tap`` support."""
    import nodes

    nodes._dispatcher_port = _listening_port
    sys.argv = ["nodes.py", config, "--log", log]
    nodes.main()


def _listening_port(root):
    """nodes.py asks the newer tap for its listener; the older and the newer
    DispatcherService both keep ``connect_endpoint`` ("tcp:host=...:port=N")."""
    for service in root:
        endpoint = getattr(service, "connect_endpoint", None)
        if endpoint:
            return int(endpoint.rpartition("port=")[2])
    return None


# -- the orchestrator ---------------------------------------------------------------------


def memory_kib(pid):
    """(VmRSS, VmHWM) of ``pid`` in KiB; ValueError once it has exited."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for row in status:
            key, _, value = row.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def reset_high_water(pid):
    """Reset the kernel's peak RSS (VmHWM) of ``pid``; whether it worked."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


class PeakWatch(threading.Thread):
    """Samples a process's RSS every 50 ms, keeps the peak since :meth:`restart`,
    and kills the process past ``cap_kib`` so that it cannot take the machine down."""

    def __init__(self, pid, cap_kib):
        super().__init__(daemon=True)
        self.pid, self.cap_kib = pid, cap_kib
        self.peak_kib, self.killed_at_kib, self.use_hwm = 0, None, False
        self._lock, self._done = threading.Lock(), threading.Event()

    def restart(self):
        with self._lock:
            self.use_hwm = reset_high_water(self.pid)
            self.peak_kib = rss_kib(self.pid)

    def run(self):
        while not self._done.wait(0.05):
            try:
                rss, hwm = memory_kib(self.pid)
            except (OSError, KeyError, ValueError):
                return
            with self._lock:
                self.peak_kib = max(self.peak_kib, rss, hwm if self.use_hwm else 0)
            if rss > self.cap_kib and self.killed_at_kib is None:
                self.killed_at_kib = rss
                os.kill(self.pid, signal.SIGKILL)

    def stop(self):
        self._done.set()
        self.join()


def start_network(cluster, run_dir, name, dispatcher_env=None):
    """The dispatcher's process and the actors' process; (dispatcher child, port)."""
    from nodes import write_config

    (run_dir / "attack_actors.py").write_text(ACTORS_MODULE)
    config = write_config(run_dir / f"{name}-dispatcher.toml", dispatcher={
        "listen": ["tcp:0:interface=127.0.0.1:backlog=1024"], "connection_file": False,
        "token": TOKEN, "keepalive_interval": KEEPALIVE_INTERVAL})
    dispatcher = cluster.python(f"{name}-dispatcher", "attacks.py", "node", config,
                                run_dir / f"{name}-dispatcher.twistd.log", cwd=run_dir,
                                env=dispatcher_env)
    port = dispatcher.info["port"]
    actors = run_dir / f"{name}-actors.toml"
    actors.write_text("\n".join([
        "[join]", f'connect = "tcp:host={HOST}:port={port}"', f'token = "{TOKEN}"',
        "[[actor]]", 'class = "attack_actors:Echo"', 'name = "echo-1"', 'services = ["echo"]',
        "[[actor]]", 'class = "attack_actors:Stall"', 'name = "stall"', 'services = ["stall"]',
    ]) + "\n")
    cluster.python(f"{name}-actors", "attacks.py", "node", actors,
                   run_dir / f"{name}-actors.twistd.log", cwd=run_dir, timeout=60.0)
    return dispatcher, port


def run_attacker(cluster, run_dir, name, port, *extra, timeout=90.0):
    """Run one attacker process to its end: its RESULT, or {"error": ...}."""
    label = "-".join([name, "attacker", *map(str, extra)])
    child = cluster.python(label, "attacks.py", "attack", name, port, *extra, ready=False,
                           cwd=run_dir)
    try:
        return child.result(timeout)
    except ChildFailed as e:
        return {"error": str(e)[:600], "summary": f"attacker failed: {str(e)[:200]}"}
    finally:
        cluster.stop(child)


def attack_stalled(cluster, run_dir, dispatcher, port):
    rounds = []
    for round_no in range(1, STALLED_ROUNDS + 1):
        result = run_attacker(cluster, run_dir, "stalled-partial-frames", port, round_no)
        time.sleep(1.0)
        result["rss_mib_after_round"] = rss_mib(dispatcher)
        rounds.append(result)
        if dispatcher.popen.poll() is not None:
            break
    after = ", ".join(str(r["rss_mib_after_round"]) for r in rounds)
    text = "; ".join(f"round {r.get('round', '?')}: {r['summary']}" for r in rounds[:1])
    return {"rounds": rounds, "rss_mib_rounds": [r["rss_mib_after_round"] for r in rounds],
            "summary": f"{text}; RSS after each round {after} MiB"}


def attack_one(name):
    def run(cluster, run_dir, dispatcher, port):
        return run_attacker(cluster, run_dir, name, port)
    return run


ATTACKS = {name: attack_one(name) for name in ATTACKERS}
ATTACKS["stalled-partial-frames"] = attack_stalled


def rss_mib(child):
    """The RSS of a running child in MiB (None once it has exited)."""
    if child.popen.poll() is not None:
        return None
    return round(rss_kib(child.pid) / 1024, 1)


def measure(name, run_dir, cap_mib, dispatcher_env=None):
    """Run one attack on a fresh network: its result line."""
    with Cluster(run_dir) as cluster:
        dispatcher, port = start_network(cluster, run_dir, name, dispatcher_env)
        watch = PeakWatch(dispatcher.pid, cap_mib * 1024)
        watch.start()
        try:
            stop_file = run_dir / f"{name}.stop"
            watcher = cluster.python(f"{name}-bystander", "attacks.py", "bystander",
                                     f"tcp:host={HOST}:port={port}", stop_file, cwd=run_dir)
            normal_from = time.monotonic() + 0.5
            time.sleep(NORMAL_SECONDS)
            before, cpu_before = rss_mib(dispatcher), cpu_seconds(dispatcher.pid)
            watch.restart()
            attack_from = time.monotonic()
            detail = ATTACKS[name](cluster, run_dir, dispatcher, port)
            attack_to = time.monotonic()
            time.sleep(SETTLE_SECONDS)
            after, alive = rss_mib(dispatcher), dispatcher.popen.poll() is None
            cpu = cpu_seconds(dispatcher.pid) - cpu_before if alive else None
            lost = innocents_lost(run_dir / f"{name}-dispatcher.twistd.log")
            stop_file.touch()
            seen = bystander_result(watcher)
        finally:
            watch.stop()
        exit_code = dispatcher.popen.poll()
    line = {"attack": name, "rss_mib_before": before,
            "rss_mib_peak": round(watch.peak_kib / 1024, 1), "rss_mib_after": after}
    line.update(bystander_stats(seen, normal_from, attack_from, attack_to))
    line.update(attack_seconds=round(attack_to - attack_from, 1),
                dispatcher_cpu_s_attack=None if cpu is None else round(cpu, 2),
                dispatcher_alive=alive, peak_from="VmHWM" if watch.use_hwm else "samples")
    line["innocents_lost"] = lost
    line["notes"] = notes(detail, watch, exit_code, lost)
    line["detail"] = detail
    return line


def bystander_result(watcher):
    try:
        return watcher.result(ASK_TIMEOUT + 15)
    except ChildFailed as e:
        return {"samples": [], "reconnects": None,
                "error_examples": {"bystander failed": str(e)[:400]}}


def bystander_stats(seen, normal_from, attack_from, attack_to):
    """p50 alone and p50/p99 during the attack (asks that succeeded), failures, counts."""
    def window(low, high):
        return [(ms, error) for t, ms, error in seen["samples"] if low <= t < high]

    normal, during = window(normal_from, attack_from), window(attack_from, attack_to)
    fine = sorted(ms for ms, error in normal if error is None)
    good = sorted(ms for ms, error in during if error is None)
    return {"bystander_p50_ms_normal": round(percentile(fine, 0.5), 3) if fine else None,
            "bystander_p50_ms_attack": round(percentile(good, 0.5), 3) if good else None,
            "bystander_p99_ms_attack": round(percentile(good, 0.99), 3) if good else None,
            "bystander_failures": len(during) - len(good),
            "bystander_asks_attack": len(during),
            "bystander_longest_ms_attack": round(max((ms for ms, _ in during), default=0), 1),
            "bystander_errors_attack": dict(Counter(e for _, e in during if e is not None)),
            "bystander_asks_normal": len(normal),
            "bystander_failures_normal": len(normal) - len(fine),
            "bystander_failures_after": sum(1 for _, e in window(attack_to, float("inf")) if e),
            "bystander_reconnects": seen["reconnects"],
            "bystander_error_examples": seen["error_examples"]}


def innocents_lost(log_path):
    """The echo and stall actors' departures the dispatcher logged, other than a
    DISCONNECT (the holdtime, a lost connection): {"stall": ["reason", ...]}."""
    lost = {}
    try:
        rows = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return lost
    for row in rows:
        for actor in ("echo-1", "stall"):
            marker = f"actor {actor} left ("
            if marker in row and "it said DISCONNECT" not in row:
                lost.setdefault(actor, []).append(row.partition(marker)[2][:-1][:120])
    return lost


def notes(detail, watch, exit_code, lost):
    text = detail.get("summary", "")
    for actor, reasons in lost.items():
        text += f"; innocent actor {actor} lost {len(reasons)}x ({reasons[0]})"
    if watch.killed_at_kib is not None:
        text += f"; KILLED by the bench at {watch.killed_at_kib / 1024:.0f} MiB (--rss-cap-mib)"
    elif exit_code is not None:
        text += f"; the dispatcher EXITED (code {exit_code})"
    return text


def table(lines):
    out = [f"{'attack':<23} {'RSS MiB before':>14} {'peak':>7} {'after':>7} "
           f"{'p50 ms normal':>13} {'p50 attack':>10} {'p99 attack':>10} {'fail':>4}  notes"]
    for r in lines:
        if "error" in r:
            out.append(f"{r['attack']:<23} ERROR {r['error']}")
            continue
        out.append(f"{r['attack']:<23} {_cell(r['rss_mib_before'], 14)} "
                   f"{_cell(r['rss_mib_peak'], 7)} {_cell(r['rss_mib_after'], 7)} "
                   f"{_cell(r['bystander_p50_ms_normal'], 13, 2)} "
                   f"{_cell(r['bystander_p50_ms_attack'], 10, 2)} "
                   f"{_cell(r['bystander_p99_ms_attack'], 10, 2)} {r['bystander_failures']:>4}  "
                   f"{r['notes']}")
    return "\n".join(out)


def _cell(value, width, digits=1):
    return f"{value:>{width}.{digits}f}" if isinstance(value, int | float) else f"{'-':>{width}}"


def reexec_under(python):
    """Run this whole script under ``python`` (once)."""
    if os.environ.get(REEXEC_GUARD) or Path(sys.executable).absolute() == Path(python).absolute():
        return
    env = dict(os.environ, **{REEXEC_GUARD: python})
    os.execve(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]], env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter whose installed actornet runs everything")
    parser.add_argument("--only", help="comma-separated attack names")
    parser.add_argument("--list", action="store_true", help="list the attacks and exit")
    parser.add_argument("--rss-cap-mib", type=int, default=12288,
                        help="kill a dispatcher whose RSS passes this (default 12288)")
    parser.add_argument("--mmap-threshold", type=int, metavar="BYTES",
                        help="glibc's mmap threshold for the dispatcher: blocks this big get "
                             "mappings of their own, given back when freed (RSS that stays "
                             "high without it but not with it is the allocator's, not a leak)")
    parser.add_argument("--keep", action="store_true", help="keep the configs and logs")
    args = parser.parse_args()
    if args.list:
        print("\n".join(ATTACKS))
        return
    names = [n.strip() for n in (args.only or ",".join(ATTACKS)).split(",") if n.strip()]
    unknown = sorted(set(names) - set(ATTACKS))
    if unknown:
        sys.exit(f"unknown attack {', '.join(unknown)}; one of {', '.join(ATTACKS)}")
    reexec_under(args.python)
    run(names, args)


def run(names, args):
    import actornet

    raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_dir = Path(tempfile.mkdtemp(prefix="actornet-attacks-"))
    where = str(Path(actornet.__file__).parent)
    print(f"actornet from {where} under {sys.executable}; logs in {run_dir}", file=sys.stderr)
    env = None
    if args.mmap_threshold:
        env = {"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={args.mmap_threshold}"}
    lines, failed = [], False
    try:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            try:
                line = measure(name, run_dir, args.rss_cap_mib, env)
            except Exception as e:
                failed = True
                line = {"attack": name, "error": f"{type(e).__name__}: {e}"[:800]}
            line.update(python=sys.executable, actornet=where)
            if env:
                line["dispatcher_env"] = env
            lines.append(line)
            print(json.dumps(line), flush=True)
    finally:
        stop_all()
    print("\n" + table(lines), file=sys.stderr, flush=True)
    if args.keep or failed:
        print(f"configs and logs kept in {run_dir}", file=sys.stderr)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "node":
        node(*sys.argv[2:4])
    elif len(sys.argv) > 1 and sys.argv[1] == "bystander":
        bystander(*sys.argv[2:4])
    elif len(sys.argv) > 1 and sys.argv[1] == "attack":
        attacker(*sys.argv[2:])
    else:
        main()
