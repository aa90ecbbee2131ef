"""The ``actornet`` command's help texts: what each command says of itself.

Kept apart from :mod:`actornet.cli`, which wires the options, so that the
words can be read and changed as one text.
"""

from actornet import commands

DESCRIPTION = f"""\
Talk to a running actornet network from a shell.

An answer is printed as JSON on stdout.  Tables (workers, dispatchers, jobs,
status, trace, and call's --route and --trace) are drawn with rich when their
stream is a terminal, and printed as plain aligned text (status: JSON) on a
pipe or a file, or with --json.  A failure is one line on stderr,
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
  actornet trace --last 1
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

--trace draws the route as a timeline on stderr: one row per hop with its
KIND (dispatcher or actor), +MS, GAP MS (since the previous hop let go of the
bag: the wire and the queues) and HELD MS, then a bar to scale: "." for the
gap, "#" for the time held.  Slow hops end in "<< slow" (red on a terminal,
unless $NO_COLOR is set).

examples:
  actornet call math add --data '{{"a": 50, "b": 49}}'
  actornet call billing claim --data @claim.json --trace --svg claim.svg
  actornet call math add --target all --data '{{"a": 1, "b": 2}}'
  actornet call billing claim --data @claim.json --route 2>route.txt | jq .
  actornet call greet hello --data '{{"name": "ada"}}' --wait 10"""

TRACE_EPILOG = """\
Asks the dispatcher's journal for bags (journal.get for KEY, journal.last for
--last) and draws each one's route as a timeline, as "actornet call --trace"
does: one row per hop with its KIND (dispatcher or actor), +MS (when it got
the bag, after the first stamp), GAP MS (since the previous hop let go of it),
HELD MS, and a bar to scale ("." for the gap, "#" for the time held).  Slow
hops end in "<< slow".  A dispatcher without a journal answers
unknown_service.

examples:
  actornet trace client-4711-7f84ea757b90:1
  actornet trace --last 5 --service billing --svg billing.svg
  actornet trace --last 3 --json | jq '.[].total_ms'"""

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
On a terminal, a table of FIELD and VALUE (nested fields named by their path,
counters.NAME); on a pipe, or with --json, the answer as JSON.

example:
  actornet status | jq .uptime"""

STOP_EPILOG = """\
example:
  actornet stop --connection-file greeter.json"""

FETCH_EPILOG = """\
The answer is {"path", "dest", "bytes", "sha256", "skipped", "source",
"seconds"}: bytes is what was transferred (0 when dest already held the same
file), seconds how long it took (rounded to milliseconds).  When stderr is a
terminal a progress bar is drawn there.

example:
  actornet fetch hello.txt --dest /tmp"""


JOBS_EPILOG = """\
A job is a request the jobs service (actornet.actors.jobs:Jobs, one of the
example network's actors) sends for you: submit answers at once with
{"status": 202, "job": ID, "actors": [...]}, or fails at once (unknown_service,
no_workers) when no actor can take it.  Its outcome is kept for the service's
keep_seconds (an hour by default).

examples:
  actornet submit math add --data '{"a": 1, "b": 2}'
  actornet job 3f2a9c1b7d4e --wait
  actornet jobs"""
