"""Runs one actornet config in this process: a dispatcher, actors, or both.

    python bench/nodes.py CONFIG --log FILE [--profile FILE] [--reactor asyncio]

It builds the same service tree as ``twistd -n actornet --config CONFIG``
(``actornet.tap.build``), logging to ``--log``.  ``--reactor asyncio`` runs it
on Twisted's asyncio reactor, as ``twistd --reactor=asyncio`` does (a
``[federation]`` table needs it).  Once the dispatcher listens and
every actor of the process is registered it prints ``READY {"pid", "port"}``
(``port`` is the dispatcher's, when there is one); it stops on SIGTERM.  With
``--profile`` the reactor runs under cProfile and the stats are dumped there
at exit.
"""

import argparse
import cProfile
import json
import os

from procs import raise_fd_limit, say
from twisted.internet.defer import DeferredList
from twisted.logger import globalLogBeginner, textFileLogObserver

from actornet import config, tap


def write_config(path, *, dispatcher=None, federation=None, join=None, actors=()):
    """Write an actornet TOML config.

    @param dispatcher: the [dispatcher] table (a dict), or None.
    @param federation: the [federation] table (a dict), or None.
    @param join: the endpoint to join, or None.
    @param actors: [[actor]] tables (dicts).
    """
    lines = []
    for name, table in (("dispatcher", dispatcher), ("federation", federation)):
        if table is not None:
            lines.append(f"[{name}]")
            lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    if join is not None:
        lines += ["[join]", f"connect = {_toml(join)}"]
    for actor in actors:
        lines.append("[[actor]]")
        lines += [f"{key} = {_toml(value)}" for key, value in actor.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _dispatcher_port(root):
    for service in root:
        if isinstance(service, tap.DispatcherService):
            return service.listeners[0].endpoint.port.getHost().port
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--log", required=True)
    parser.add_argument("--profile")
    parser.add_argument("--reactor", choices=("default", "asyncio"), default="default")
    args = parser.parse_args()
    if args.reactor == "asyncio":
        from twisted.internet import asyncioreactor

        asyncioreactor.install()
    from twisted.internet import reactor

    raise_fd_limit()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(open(args.log, "a"))],
                                     redirectStandardIO=False)
    root = tap.build(config.load(args.config), reactor)
    root.startService()
    reactor.addSystemEventTrigger("before", "shutdown", root.stopService)
    port = _dispatcher_port(root)
    attached = DeferredList([actor.when_attached() for actor in root.actors()])
    attached.addCallback(lambda _: say("READY", {"pid": os.getpid(), "port": port}))
    if args.profile is None:
        reactor.run()
        return
    profiler = cProfile.Profile()
    profiler.runcall(reactor.run)
    profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
