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

from actornet import commands, job_commands
from actornet.certs import add_certs
from actornet.cli_help import (
    CALL_EPILOG,
    DESCRIPTION,
    DISPATCHERS_EPILOG,
    EXAMPLES,
    FETCH_EPILOG,
    JOBS_EPILOG,
    STATUS_EPILOG,
    STOP_EPILOG,
    TRACE_EPILOG,
    WORKERS_EPILOG,
)
from actornet.shown import error_line

EXIT_FAILED = 1
EXIT_USAGE = 2

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


def _milliseconds(text):
    try:
        ms = float(text)
    except ValueError:
        ms = math.nan
    if not (math.isfinite(ms) and ms >= 0):
        raise argparse.ArgumentTypeError(f"expected milliseconds (0 or more), got {text!r}")
    return ms


def _positive_int(text):
    if not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def _bag_key(text):
    """``NAME:SEQ`` as ``(name, seq)``; the name may hold ``:`` itself."""
    name, _, seq = text.rpartition(":")
    if not (name and seq.isdigit()):
        raise argparse.ArgumentTypeError(f"a bag's key is NAME:SEQ, got {text!r}")
    return name, int(seq)


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


def connection_arguments(sub, timeout_help=WHOLE_EXCHANGE, wait=True):
    """Add the options every command that talks to a dispatcher takes (``wait``:
    with ``--wait SECONDS`` for a dispatcher still starting; a command whose own
    ``--wait`` means something else does without it)."""
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
    if not wait:
        sub.set_defaults(wait=0.0)
        return
    where.add_argument("--wait", metavar="SECONDS", type=_seconds, default=0.0,
                       help="first wait up to this long for a dispatcher that is still "
                            "starting: retry while the connection file is missing or the "
                            "connection is refused (default: do not wait)")


def _command(subparsers, name, run, summary, epilog):
    sub = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:],
                               epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(run=run)
    return sub


def _request_arguments(sub):
    """The request ``call`` and ``submit`` send: service, method, ``--data``, ``--target``."""
    sub.add_argument("service", help="the service to ask, e.g. math")
    sub.add_argument("method", help="the method (handler) to call, e.g. add")
    sub.add_argument("--data", metavar="JSON", default="{}",
                     help="the request: a JSON object, @FILE or - for stdin (default: {})")
    sub.add_argument("--target", type=_target, default="any",
                     help="which actors: any (the least busy, default), all, NAME or "
                          "NAME,NAME,...")


def _add_call(subparsers):
    call = _command(subparsers, "call", commands.run_call, "ask a service and print its answer",
                    CALL_EPILOG)
    _request_arguments(call)
    call.add_argument("--route", action="store_true",
                      help="also print the answer's route, on stderr")
    call.add_argument("--progress", action="store_true",
                      help="print the handler's progress reports on stderr as they come "
                           "(a bar on a terminal when they count done of total)")
    trace = call.add_argument_group("drawing the route as a timeline")
    trace.add_argument("--trace", action="store_true",
                       help="also draw the answer's route as a timeline, on stderr")
    trace.add_argument("--trace-json", action="store_true",
                       help="also print that timeline as JSON, on stderr")
    _drawing_arguments(trace)
    connection_arguments(call)


def _drawing_arguments(sub):
    """``--svg`` and ``--slow-ms``, which ``call`` and ``trace`` draw timelines with."""
    sub.add_argument("--svg", metavar="FILE",
                     help="also write the timeline(s) to FILE as an SVG picture")
    sub.add_argument("--slow-ms", metavar="MS", type=_milliseconds, default=None,
                     help="mark a hop slow when it held the bag, or the bag took to reach "
                          "it, at least MS milliseconds (a hop that takes 30%% of the "
                          "route's time is marked slow anyway)")


def _add_trace(subparsers):
    sub = _command(subparsers, "trace", commands.run_trace,
                   "draw bags' routes from the dispatcher's journal as timelines",
                   TRACE_EPILOG)
    which = sub.add_mutually_exclusive_group()
    which.add_argument("key", nargs="?", type=_bag_key, metavar="KEY",
                       help="the bag's key, NAME:SEQ (its first hop's name and sequence "
                            "number)")
    which.add_argument("--last", metavar="N", type=_positive_int,
                       help="the last N bags the journal kept (default: the last one)")
    sub.add_argument("--service", help="with --last: only bags asked of this service")
    sub.add_argument("--json", action="store_true",
                     help="print the timelines as a JSON list instead of drawing them")
    _drawing_arguments(sub)
    connection_arguments(sub)


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
                      "the dispatcher's state (endpoints, uptime, counters)", STATUS_EPILOG)
    status.add_argument("--json", action="store_true",
                        help="print the answer as JSON on a terminal too")
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


def _add_jobs(subparsers):
    submit = _command(subparsers, "submit", job_commands.run_submit,
                      "start a job and print its id at once", JOBS_EPILOG)
    _request_arguments(submit)
    submit.add_argument("--job-timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="how long the job may run (default 3600)")
    connection_arguments(submit)
    job = _command(subparsers, "job", job_commands.run_job,
                   "how a job stands (with --wait: once it is done)", JOBS_EPILOG)
    job.add_argument("job", help="the job's id, as submit printed it")
    job.add_argument("--wait", dest="until_done", action="store_true",
                     help="answer once the job is done (up to --timeout)")
    job.add_argument("--cancel", action="store_true", help="give the job up")
    connection_arguments(job, wait=False)
    jobs = _command(subparsers, "jobs", job_commands.run_jobs, "a table of the jobs kept",
                    JOBS_EPILOG)
    jobs.add_argument("--json", action="store_true", help="print the answer as JSON")
    connection_arguments(jobs)


COMMANDS = [_add_call, _add_trace, _add_admin, _add_jobs, _add_fetch, add_certs]


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
    top = parser()
    args = top.parse_args(argv)
    if args.command == "trace" and args.key is not None and args.service:
        top.error("trace: --service goes with --last, not with a KEY")
    if args.command in ("call", "submit"):
        try:
            args.data = load_data(args.data)
        except UsageError as e:
            print(f"actornet: {e}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None

    async def run(reactor):
        try:
            status = await args.run(reactor, args)
        except Exception as e:
            print(error_line(e), file=sys.stderr)
            raise SystemExit(EXIT_FAILED) from None
        if status:
            raise SystemExit(status)

    react(lambda reactor: ensureDeferred(run(reactor)))
