"""What each ``actornet`` command does once :mod:`actornet.cli` has parsed its options.

Every command prints its answer as JSON (or a table) on stdout and returns its
exit status (None for 0); failures are raised for ``actornet.cli.main`` to
print as one line.  Routes go to stderr, so stdout stays pure JSON for ``jq``.
Tables and bars are drawn by :mod:`actornet.console`: rich on a terminal, the
plain text scripts parse elsewhere.
"""

import json
import sys
from pathlib import PurePosixPath

from twisted.internet.defer import CancelledError, Deferred

from actornet.call_progress import EXIT_CANCELLED, ProgressPrinter, cancelled_by_interrupt
from actornet.cli_connect import reach
from actornet.console import ProgressBar, Rows, show_table
from actornet.fetch import FetchError, fetch
from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError, Cancelled, UnknownService
from actornet.shown import jsonable
from actornet.trace import (
    DISPATCHERS,
    as_json,
    draw,
    keys_from_journal,
    routes_from_journal,
    timeline,
    timeline_rows,
)
from actornet.trace_svg import as_svg

EXIT_SOME_FAILED = 3
"""``call`` to several actors (``--target all`` or a list): the combined answer is
printed, and at least one of the actors' answers in it is a failure."""


async def with_client(reactor, args, work):
    """Reach the dispatcher as the options say, run ``await work(reached)``, close."""
    reached = await reach(reactor, args)
    try:
        return await work(reached)
    finally:
        await reached.client.close()


ROUTE_COLUMNS = ("HOP", "NAME", "HOST:PID", "CONN", "SEQ", "+MS", "HELD MS")


def route_rows(route):
    """One row per stamp: hop, name, host:pid, connection, sequence, when it
    arrived after the first stamp and how long that hop held the bag (ms)."""
    start = route[0].arrived if route else 0.0
    return Rows(ROUTE_COLUMNS, [
        [str(stamp.hop), stamp.name, f"{stamp.host}:{stamp.pid}", str(stamp.conn),
         str(stamp.seq), f"{(stamp.arrived - start) * 1000:.3f}",
         f"{(stamp.departed - stamp.arrived) * 1000:.3f}"] for stamp in route],
        numeric={0, 3, 4, 5, 6})


async def dispatcher_names(reached):
    """The names of the network's dispatchers (``mmi dispatchers``), which tell
    a route's dispatcher hops from its actor hops."""
    answer = await reached.ask("mmi", "dispatchers")
    return frozenset(row["name"] for row in answer["dispatchers"])


def show_traces(routes, dispatchers=DISPATCHERS, *, out=sys.stdout, text=True,
                json_out=False, svg=None, slow_ms=None, titles=None):
    """Draw each of ``routes`` (bags' routes, sequences of stamps), each titled
    with ``titles`` (the journal's keys) or else its first stamp's name and
    sequence number: with ``text`` as a timeline on ``out`` (a rich table when
    ``out`` is a terminal, else :func:`~actornet.trace.draw`'s text), with
    ``json_out`` as one JSON list on ``out``, with ``svg`` as an SVG picture
    written to that file.

    @raise ActornetError: the SVG file could not be written (not an OSError,
        which ``actornet.cli.main`` reports as a failed connection).
    """
    titles = titles or [_key(route) for route in routes]
    traces = [(title, timeline(route, dispatchers, slow_ms=slow_ms))
              for title, route in zip(titles, routes, strict=True)]
    if json_out:
        print(json.dumps([{"key": key, **as_json(trace)} for key, trace in traces]), file=out)
    elif text:
        for key, trace in traces:
            print(f"trace of {key} ({len(trace.hops)} hops, {trace.total_ms:.3f} ms):",
                  file=out, flush=True)
            show_table(timeline_rows(trace), out, text=draw(trace))
    if svg:
        try:
            with open(svg, "w", encoding="utf-8") as picture:
                picture.write(as_svg(traces))
        except OSError as e:
            raise ActornetError(f"could not write the SVG to {svg}: {e.strerror}") from e


def _key(route):
    return f"{route[0].name}:{route[0].seq}" if route else "-"


async def run_call(reactor, args):
    tracing = args.trace or args.trace_json or args.svg

    async def call(reached):
        answer = await _ask(reactor, reached, args)
        if answer is None or not tracing:
            return answer, DISPATCHERS
        return answer, await dispatcher_names(reached)

    answer, dispatchers = await with_client(reactor, args, call)
    if answer is None:
        print("actornet: cancelled", file=sys.stderr, flush=True)
        return EXIT_CANCELLED
    print(json.dumps(answer, default=jsonable), flush=True)
    if args.route:
        print(f"route ({len(answer.route)} stamps):", file=sys.stderr)
        show_table(route_rows(answer.route), sys.stderr)
    if tracing:
        show_traces([answer.route], dispatchers, out=sys.stderr, text=args.trace,
                    json_out=args.trace_json, svg=args.svg, slow_ms=args.slow_ms)
    gathered = args.target == "all" or isinstance(args.target, list)
    if gathered and any(entry.get("status") != Status.SUCCESS for entry in answer.values()):
        return EXIT_SOME_FAILED
    return None


async def _ask(reactor, reached, args):
    """The answer, showing progress if asked to; None when Ctrl-C cancelled it."""
    printer = (ProgressPrinter(f"{args.service}.{args.method}", reached.client.clock)
               if args.progress else None)
    asking = Deferred.fromCoroutine(reached.ask(args.service, args.method, args.data,
                                                target=args.target, on_progress=printer))
    try:
        with cancelled_by_interrupt(reactor, asking):
            return await asking
    except (Cancelled, CancelledError):
        return None
    finally:
        if printer is not None:
            printer.finish()


WORKER_COLUMNS = (("name", "NAME"), ("services", "SERVICES"), ("dispatcher", "DISPATCHER"),
                  ("status", "STATUS"),
                  ("alive_for", "ALIVE-FOR"), ("holdtime_left", "HOLDTIME"),
                  ("keepalives_sent", "KA-TX"), ("keepalives_received", "KA-RX"),
                  ("in_flight", "IN-FLIGHT"), ("handled", "HANDLED"))


def record_rows(columns, records, styles=()):
    """``records`` (dicts) as :class:`~actornet.console.Rows`, a column per
    ``(key, TITLE)`` of ``columns``: a list comma-separated, a field missing or
    None "-"."""
    def cell(value):
        if value is None:
            return "-"
        return ",".join(value) if isinstance(value, list) else str(value)

    return Rows([title for _, title in columns],
                [[cell(record.get(key)) for key, _ in columns] for record in records],
                styles=styles)


def worker_rows(actors):
    """The actors ``show`` lists, one row each; dead ones dim on a terminal."""
    return record_rows(WORKER_COLUMNS, actors,
                       ["dim" if actor.get("status") == "dead" else "" for actor in actors])


async def run_workers(reactor, args):
    query = {key: value for key, value in (("service", args.service), ("status", args.status))
             if value}

    async def list_actors(reached):
        try:
            return await reached.client.ask("keepalive", "show", query,
                                            timeout=reached.seconds_left())
        except ActornetError as e:
            if e.status not in (Status.UNKNOWN_SERVICE, Status.NO_WORKERS):
                raise
        answer = await reached.client.ask("mmi", "show_actors", query,
                                          timeout=reached.seconds_left())
        if args.status == "dead":
            answer["actors"] = []
        return answer

    answer = await with_client(reactor, args, list_actors)
    if args.json:
        print(json.dumps(answer["actors"]))
    else:
        show_table(worker_rows(answer["actors"]))


DISPATCHER_COLUMNS = (("name", "NAME"), ("status", "STATUS"), ("host", "HOST"), ("pid", "PID"),
                      ("actors", "ACTORS"), ("connections", "CONNECTIONS"),
                      ("in_flight", "IN-FLIGHT"), ("uptime", "UPTIME"),
                      ("holdtime_left", "HOLDTIME"))


async def run_dispatchers(reactor, args):
    answer = await with_client(reactor, args,
                               lambda reached: reached.ask("mmi", "dispatchers"))
    if args.json:
        print(json.dumps(answer))
        return
    show_table(record_rows(DISPATCHER_COLUMNS, answer["dispatchers"]))
    if answer.get("down"):
        print(f"the federation link is down: {answer['down']}", file=sys.stderr)


async def run_status(reactor, args):
    answer = await with_client(reactor, args,
                               lambda reached: reached.ask("mmi", "show_dispatcher"))
    text = json.dumps(answer, indent=2)
    if args.json:
        print(text)
    else:
        show_table(status_rows(answer), text=text)


def status_rows(answer):
    """``show_dispatcher``'s answer as FIELD and VALUE rows for a terminal:
    a nested field is named by its path (``counters.requests``), a list is
    comma-separated."""
    def fields(path, value):
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                yield from fields(f"{path}.{key}" if path else key, inner)
        elif isinstance(value, list):
            yield path, ", ".join(map(str, value))
        else:
            yield path, value if isinstance(value, str) else json.dumps(value, default=str)

    return Rows(("FIELD", "VALUE"), list(fields("", answer)))


async def run_stop(reactor, args):
    answer = await with_client(reactor, args, lambda reached: reached.ask(
        "mmi", "shutdown", {"token": reached.token} if reached.token else {}))
    print(json.dumps(answer))


async def run_fetch(reactor, args):
    async def work(reached):
        client = reached.client
        bar = ProgressBar.for_terminal(PurePosixPath(args.path).name, client.clock)
        try:
            return await fetch(client, args.path, args.dest, service=args.service,
                               progress=bar, timeout=args.timeout)
        except OSError as e:
            raise FetchError(f"could not write into {args.dest}: {e}") from e
        finally:
            if bar is not None:
                bar.finish()

    result = await with_client(reactor, args, work)
    result["seconds"] = round(result["seconds"], 3)
    print(json.dumps(result))


JOURNAL = "journal"
"""The service that keeps bags by key (``get``) and the latest ones (``last``)."""


async def run_trace(reactor, args):
    if args.key is not None:
        method, query = "get", {"key": list(args.key)}
    else:
        method, query = "last", {"n": args.last or 1}
        if args.service:
            query["service"] = args.service

    async def read(reached):
        try:
            answer = await reached.ask(JOURNAL, method, query)
        except UnknownService as e:
            raise UnknownService(f"the dispatcher keeps no journal, so there are no bags to "
                                 f"trace ({e.message})") from e
        return answer, await dispatcher_names(reached)

    answer, dispatchers = await with_client(reactor, args, read)
    show_traces(routes_from_journal(answer), dispatchers, json_out=args.json, svg=args.svg,
                slow_ms=args.slow_ms, titles=keys_from_journal(answer))
