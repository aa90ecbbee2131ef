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

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from actornet.client import connect
from protocols.errors import ActornetError

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


COMMANDS = [_add_call]


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
