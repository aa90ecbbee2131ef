"""The ``actornet`` command: talk to a running network from a shell.

    actornet call math add --data '{"a": 50, "b": 49}' --route

Answers are printed as JSON on stdout and the exit status is 0; any failure is
one line on stderr naming its status (``no_workers``, ``timeout``, ...) and a
non-zero exit status, so scripts can rely on both.
"""

import argparse
import base64
import datetime
import json
import os
import sys
from pathlib import PurePosixPath

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from actornet.client import connect
from actornet.config import connection_file_path
from actornet.connfile import read as read_connection
from actornet.fetch import FetchError, ProgressBar, fetch
from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError

EXIT_FAILED = 1
EXIT_USAGE = 2


def _jsonable(value):
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _target(text):
    if text in ("any", "all"):
        return text
    names = [name for name in text.split(",") if name]
    if not names:
        raise argparse.ArgumentTypeError("a target is any, all, NAME or NAME,NAME,...")
    return names[0] if len(names) == 1 else names


def _data(text):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--data is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError("--data must be a JSON object")
    return data


def connection_arguments(sub):
    """Add the options every command that talks to a dispatcher takes."""
    sub.add_argument("--connect", default=os.environ.get("ACTORNET_CONNECT"),
                     help="dispatcher endpoint, e.g. tcp:host=127.0.0.1:port=5570 "
                          "(default: the dispatcher's connection file)")
    sub.add_argument("--token", default=os.environ.get("ACTORNET_TOKEN"))
    sub.add_argument("--connection-file", default=None,
                     help="where the dispatcher wrote its connection info")


async def with_client(reactor, args, work):
    """Connect as the command line's options say, run ``await work(client)``, close."""
    client = await connect(args.connect, args.token, reactor=reactor,
                           connection_file=args.connection_file)
    try:
        return await work(client)
    finally:
        await client.close()


def _add_call(commands):
    call = commands.add_parser("call", help="ask a service and print its answer")
    call.add_argument("service")
    call.add_argument("method")
    call.add_argument("--data", type=_data, default={}, help="the request, a JSON object")
    call.add_argument("--target", type=_target, default="any",
                      help="any (default), all, NAME or NAME,NAME,...")
    call.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    call.add_argument("--route", action="store_true", help="also print the answer's route")
    connection_arguments(call)
    call.set_defaults(run=_call)


def _add_admin(commands):
    workers = commands.add_parser("workers", help="a table of the connected actors")
    workers.add_argument("--service", help="only actors serving this service")
    workers.add_argument("--status", choices=("alive", "dead"), help="only alive or dead ones")
    workers.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status = commands.add_parser("status", help="the dispatcher's state, as JSON")
    stop = commands.add_parser("stop", help="shut the dispatcher down (needs its token)")
    for sub, run in ((workers, _workers), (status, _status), (stop, _stop)):
        connection_arguments(sub)
        sub.set_defaults(run=run)


WORKER_COLUMNS = (("name", "NAME"), ("services", "SERVICES"), ("status", "STATUS"),
                  ("alive_for", "ALIVE-FOR"), ("holdtime_left", "HOLDTIME"),
                  ("keepalives_sent", "KA-TX"), ("keepalives_received", "KA-RX"),
                  ("in_flight", "IN-FLIGHT"), ("handled", "HANDLED"))


def format_workers(rows):
    """The rows of ``show`` as an aligned text table."""
    cells = [[title for _, title in WORKER_COLUMNS]]
    for row in rows:
        line = []
        for key, _ in WORKER_COLUMNS:
            value = row.get(key, "-")
            line.append(",".join(value) if isinstance(value, list) else str(value))
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(WORKER_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                          strict=True)).rstrip()
                     for line in cells)


async def _workers(reactor, args):
    query = {key: value for key, value in (("service", args.service), ("status", args.status))
             if value}

    async def show(client):
        try:
            return await client.ask("keepalive", "show", query, timeout=10)
        except ActornetError as e:
            if e.status not in (Status.UNKNOWN_SERVICE, Status.NO_WORKERS):
                raise
        answer = await client.ask("mmi", "show_actors", query, timeout=10)
        if args.status == "dead":
            answer["actors"] = []
        return answer

    answer = await with_client(reactor, args, show)
    if args.json:
        print(json.dumps(answer["actors"]))
    else:
        print(format_workers(answer["actors"]))


async def _status(reactor, args):
    answer = await with_client(
        reactor, args, lambda client: client.ask("mmi", "show_dispatcher", timeout=10))
    print(json.dumps(answer, indent=2))


async def _stop(reactor, args):
    async def stop(client):
        token = args.token
        if token is None and args.connect is None:
            token = read_connection(connection_file_path(args.connection_file)).get("token")
        return await client.ask("mmi", "shutdown", {"token": token} if token else {},
                                timeout=10)

    answer = await with_client(reactor, args, stop)
    print(json.dumps(answer))


def _add_fetch(commands):
    sub = commands.add_parser("fetch", help="copy a file from a file share, verified by sha256")
    sub.add_argument("path", help="the file, relative to the share's folder")
    sub.add_argument("--dest", default=".", help="the folder to put it in (default: .)")
    sub.add_argument("--service", default="fileshare",
                     help="the file share's service (default: fileshare)")
    connection_arguments(sub)
    sub.set_defaults(run=_run_fetch)


async def _run_fetch(reactor, args):
    async def work(client):
        bar = ProgressBar.for_terminal(PurePosixPath(args.path).name, client.clock)
        try:
            return await fetch(client, args.path, args.dest, service=args.service,
                               progress=bar)
        except OSError as e:
            raise FetchError(f"could not write into {args.dest}: {e}") from e
        finally:
            if bar is not None:
                bar.finish()

    print(json.dumps(await with_client(reactor, args, work)))


COMMANDS = [_add_call, _add_admin, _add_fetch]


def parser():
    top = argparse.ArgumentParser(prog="actornet", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(commands)
    return top


def format_route(route):
    """One line per stamp: hop, name, host, pid, connection, sequence, time spent."""
    lines = []
    start = route[0].arrived if route else 0.0
    for stamp in route:
        lines.append(f"  hop {stamp.hop:>2}  {stamp.name:<16} {stamp.host}:{stamp.pid} "
                     f"conn {stamp.conn} seq {stamp.seq}  "
                     f"+{(stamp.arrived - start) * 1000:.3f} ms "
                     f"(held {(stamp.departed - stamp.arrived) * 1000:.3f} ms)")
    return "\n".join(lines)


async def _call(reactor, args):
    answer = await with_client(reactor, args, lambda client: client.ask(
        args.service, args.method, args.data, target=args.target, timeout=args.timeout))
    print(json.dumps(answer, default=_jsonable, indent=None))
    if args.route:
        print(f"route ({len(answer.route)} stamps):")
        print(format_route(answer.route))


def main(argv=None):
    args = parser().parse_args(argv)

    async def run(reactor):
        try:
            await args.run(reactor, args)
        except ActornetError as e:
            print(f"actornet: {e}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        except (ValueError, OSError) as e:
            print(f"actornet: connection failed: {e}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        except Exception as e:
            print(f"actornet: failed: {type(e).__name__}: {e}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None

    react(lambda reactor: ensureDeferred(run(reactor)))
