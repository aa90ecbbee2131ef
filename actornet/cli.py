"""The ``actornet`` command: talk to a running network from a shell.

    actornet call math add --data '{"a": 50, "b": 49}' --route

This module is the command line itself (options, help, exit statuses); what
each command does is in :mod:`actornet.commands`.  Answers are printed as JSON
on stdout and the exit status is 0; any failure is one line on stderr naming
its status (``no_workers``, ``timeout``, ...) and a non-zero exit status, so
scripts can rely on both.
"""

import argparse
import json
import math
import os
import re
import sys
from importlib.metadata import version
from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from actornet import commands
from actornet.certs import add_certs
from actornet.cli_connect import ConnectionFailed
from actornet.protocols.errors import ActornetError

EXIT_FAILED = 1
EXIT_USAGE = 2

DESCRIPTION = f"""\
Talk to a running actornet network from a shell.

An answer is printed as JSON on stdout.  A failure is one line on stderr,
"actornet: STATUS: what happened" (STATUS is timeout, no_workers, actor_lost,
unknown_service, ...).

The dispatcher is found through the connection file it wrote when it started
(~/.actornet/connection.json, $ACTORNET_CONNECTION_FILE or --connection-file),
or --connect ENDPOINT and --token TOKEN ($ACTORNET_CONNECT, $ACTORNET_TOKEN);
--connect ENDPOINT,ENDPOINT,... tries several dispatchers in order.

exit status:
  0  the answer is on stdout
  1  the command failed (the line on stderr says why)
  2  the command line is wrong
  {commands.EXIT_SOME_FAILED}  call to several actors: some of their answers are failures
  {commands.EXIT_CANCELLED}  call interrupted by Ctrl-C: its request was cancelled"""

EXAMPLES = """\
examples:
  actornet call math add --data '{"a": 50, "b": 49}'
  actornet workers --service math
  actornet status
  actornet stop
  actornet fetch hello.txt --dest /tmp
  actornet certs init certs && actornet certs issue certs alice
  actornet COMMAND --help      (more about one command)"""

CALL_EPILOG = f"""\
--data takes JSON, @FILE (JSON read from FILE) or - (JSON read from stdin).

With --target all (or NAME,NAME,...) the answer is one JSON object keyed by
actor name, each {{"status": 200, "result": ...}} or {{"status": CODE, "error":
...}}; the exit status is {commands.EXIT_SOME_FAILED} when any of them failed.

--route prints the answer's route on stderr, one hop per line: HOP number,
NAME of the actor (or dispatcher), HOST:PID it runs as, CONN (its connection
id at the dispatcher), SEQ (bags that hop had stamped), +MS (milliseconds
after the first stamp that the bag arrived) and HELD MS (milliseconds that hop
held it).

examples:
  actornet call math add --data '{{"a": 50, "b": 49}}'
  actornet call math add --target all --data '{{"a": 1, "b": 2}}'
  actornet call billing claim --data @claim.json --route 2>route.txt | jq .
  actornet call greet hello --data '{{"name": "ada"}}' --wait 10"""

WORKERS_EPILOG = """\
columns:
  NAME       the actor's name
  SERVICES   the services it serves, comma-separated
  DISPATCHER the dispatcher it is connected to (several in a federation)
  STATUS     alive (connected now) or dead (died or left since the keepalive
             actor started)
  ALIVE-FOR  seconds since it registered with the dispatcher
  HOLDTIME   seconds left before the dispatcher drops it if it stays silent
             (every frame from it starts the holdtime again)
  KA-TX      keepalives the dispatcher sent it (count; sent only on idle links)
  KA-RX      keepalives the dispatcher received from it (count)
  IN-FLIGHT  requests it holds now and has not answered (count)
  HANDLED    requests it answered or forwarded since it registered (count)

A dead actor shows "-" in the columns that only a connected actor has; --json
prints every field, including "event", "reason" and "dead_for" (seconds).

examples:
  actornet workers
  actornet workers --service math --status alive
  actornet workers --status dead --json | jq '.[].reason'"""

DISPATCHERS_EPILOG = """\
One row per dispatcher of the network (the one reached first; in a federation
over NATS, every other it hears from), with its health and load: ACTORS and
CONNECTIONS it serves, IN-FLIGHT requests, UPTIME and HOLDTIME (seconds before
the others give it up if it stays silent) in seconds.

examples:
  actornet dispatchers
  actornet dispatchers --json | jq '.dispatchers[].name'"""

STATUS_EPILOG = """\
example:
  actornet status | jq .uptime"""

STOP_EPILOG = """\
example:
  actornet stop --connection-file greeter.json"""

FETCH_EPILOG = """\
The answer is {"path", "dest", "bytes", "sha256", "skipped", "source",
"seconds"}: bytes is what was transferred (0 when dest already held the same
file), seconds how long it took (rounded to milliseconds).  On a terminal a
progress bar is drawn on stderr.

example:
  actornet fetch hello.txt --dest /tmp"""


class UsageError(Exception):
    """The command line is wrong in a way argparse cannot see (say, --data's file)."""


def _seconds(text):
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def _endpoints(text):
    """``--connect``: one endpoint string or several, comma-separated (a comma
    inside one is written ``\\,``, as Twisted escapes ``:`` and ``=``)."""
    endpoints = tuple(part for part in re.split(r"(?<!\\),", text) if part)
    if not endpoints:
        raise argparse.ArgumentTypeError("expected ENDPOINT or ENDPOINT,ENDPOINT,...")
    return endpoints


def _target(text):
    if text in ("any", "all"):
        return text
    names = [name for name in text.split(",") if name]
    if not names:
        raise argparse.ArgumentTypeError("a target is any, all, NAME or NAME,NAME,...")
    return names[0] if len(names) == 1 else names


def load_data(text):
    """The request ``--data`` gives: JSON, ``@FILE`` or ``-`` (stdin), as a dict.

    @raise UsageError: naming the file, or saying what is wrong with the JSON.
    """
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise UsageError(f"--data: cannot read {text[1:]}: {reason}") from e
    elif text == "-":
        text = sys.stdin.read()
    try:
        data = json.loads(text)
    except RecursionError as e:
        raise UsageError("--data: nesting too deep") from e
    except ValueError as e:
        raise UsageError(f"--data: not JSON: {e}") from e
    if not isinstance(data, dict):
        raise UsageError("--data: must be a JSON object")
    return data


WHOLE_EXCHANGE = ("give up after this long: connecting, registering and the answer all "
                  "count (default 30)")


def connection_arguments(sub, timeout_help=WHOLE_EXCHANGE):
    """Add the options every command that talks to a dispatcher takes."""
    where = sub.add_argument_group("reaching the dispatcher")
    where.add_argument("--connect", metavar="ENDPOINT[,ENDPOINT...]", type=_endpoints,
                       default=os.environ.get("ACTORNET_CONNECT"),
                       help="the dispatcher's endpoint, e.g. tcp:host=127.0.0.1:port=5570, "
                            "or several, comma-separated, tried in order until one answers "
                            "(default: $ACTORNET_CONNECT, else the connection file)")
    where.add_argument("--token", default=os.environ.get("ACTORNET_TOKEN"),
                       help="the dispatcher's token, when it has one (default: "
                            "$ACTORNET_TOKEN, else the connection file's)")
    where.add_argument("--connection-file", metavar="FILE", default=None,
                       help="where the dispatcher wrote its endpoint and token (default: "
                            "$ACTORNET_CONNECTION_FILE, else ~/.actornet/connection.json)")
    where.add_argument("--timeout", metavar="SECONDS", type=_seconds, default=30.0,
                       help=timeout_help)
    where.add_argument("--wait", metavar="SECONDS", type=_seconds, default=0.0,
                       help="first wait up to this long for a dispatcher that is still "
                            "starting: retry while the connection file is missing or the "
                            "connection is refused (default: do not wait)")


def _command(subparsers, name, run, summary, epilog):
    sub = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:],
                               epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(run=run)
    return sub


def _add_call(subparsers):
    call = _command(subparsers, "call", commands.run_call, "ask a service and print its answer",
                    CALL_EPILOG)
    call.add_argument("service", help="the service to ask, e.g. math")
    call.add_argument("method", help="the method (handler) to call, e.g. add")
    call.add_argument("--data", metavar="JSON", default="{}",
                      help="the request: a JSON object, @FILE or - for stdin (default: {})")
    call.add_argument("--target", type=_target, default="any",
                      help="which actors: any (the least busy, default), all, NAME or "
                           "NAME,NAME,...")
    call.add_argument("--route", action="store_true",
                      help="also print the answer's route, on stderr")
    call.add_argument("--progress", action="store_true",
                      help="print the handler's progress reports on stderr as they come "
                           "(a bar on a terminal when they count done of total)")
    connection_arguments(call)


def _add_admin(subparsers):
    workers = _command(subparsers, "workers", commands.run_workers,
                       "a table of the actors, alive and dead", WORKERS_EPILOG)
    workers.add_argument("--service", help="only actors serving this service")
    workers.add_argument("--status", choices=("alive", "dead"), help="only alive or dead ones")
    workers.add_argument("--json", action="store_true",
                         help="print the rows as a JSON list, every field, instead of a table")
    connection_arguments(workers)
    dispatchers = _command(subparsers, "dispatchers", commands.run_dispatchers,
                           "a table of the network's dispatchers", DISPATCHERS_EPILOG)
    dispatchers.add_argument("--json", action="store_true", help="print the answer as JSON")
    connection_arguments(dispatchers)
    status = _command(subparsers, "status", commands.run_status,
                      "the dispatcher's state (endpoints, uptime, counters), as JSON",
                      STATUS_EPILOG)
    connection_arguments(status)
    stop = _command(subparsers, "stop", commands.run_stop,
                    "shut the dispatcher down (sends its token when it has one)", STOP_EPILOG)
    connection_arguments(stop)


def _add_fetch(subparsers):
    sub = _command(subparsers, "fetch", commands.run_fetch,
                   "copy a file from a file share, verified by sha256", FETCH_EPILOG)
    sub.add_argument("path", help="the file, relative to the share's folder")
    sub.add_argument("--dest", default=".", help="the folder to put it in (default: .)")
    sub.add_argument("--service", default="fileshare",
                     help="the file share's service (default: fileshare)")
    connection_arguments(sub, timeout_help="give up connecting and registering after this "
                                           "long, and when a chunk takes longer (default 30)")


COMMANDS = [_add_call, _add_admin, _add_fetch, add_certs]


def parser():
    top = argparse.ArgumentParser(prog="actornet", description=DESCRIPTION, epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"actornet {version('actornet')}",
                     help="print actornet's version and exit")
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                   title="commands", help="one of:")
    for add in COMMANDS:
        add(subparsers)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "call":
        try:
            args.data = load_data(args.data)
        except UsageError as e:
            print(f"actornet: {e}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None

    async def run(reactor):
        try:
            status = await args.run(reactor, args)
        except ActornetError as e:
            print(f"actornet: {e}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        except (ConnectionFailed, ValueError, OSError) as e:
            print(f"actornet: connection failed: {e}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        except Exception as e:
            print(f"actornet: failed: {type(e).__name__}: {e}", file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        if status:
            raise SystemExit(status)

    react(lambda reactor: ensureDeferred(run(reactor)))
