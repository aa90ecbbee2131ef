"""Run actornet's benchmarks: one JSON line per scenario on stdout, a table on stderr.

    python bench/run.py [--quick] [--only NAME[,NAME]] [--list]
                        [--dispatcher-python PYTHON] [--warmup SECONDS]

Every process is started on 127.0.0.1 and stopped when its scenario ends.
Numbers are medians over rounds (5 rounds of 3 s after a 2 s warmup; with
``--quick`` 3 rounds of 1 s after 0.5 s).  See bench/README.md for what each
scenario measures and what each field means.
"""

import argparse
import json
import operator
import shutil
import signal
import subprocess
import sys
import time
import traceback

import federation
import peers
import progress
import scenarios
from procs import BENCH, raise_fd_limit, stop_all

GROUPS = [
    ("relay", ["raw-relay-latency", "raw-relay-pipelined", "actornet-latency",
               "actornet-pipelined", "actornet-inproc-pipelined", "actornet-pipelined-journal"],
     scenarios.relay),
    ("actornet-body", [name for name, _, _ in scenarios.BODIES], scenarios.bodies),
    ("body-echo", ["raw-relay-body-1m", "actornet-echo-body-1m"], scenarios.body_echo),
    ("transfer", ["raw-copy-64m", "fileshare-64m"], scenarios.transfer),
    ("scale", ["scale-1", "scale-100", "scale-1000"], scenarios.scale),
    ("idle", ["idle-1000"], scenarios.idle),
    ("norfab", ["norfab"], peers.norfab),
    ("crossbar", ["crossbar-latency", "crossbar-pipelined"], peers.crossbar),
    ("federation", federation.NAMES, federation.federation),
    ("progress", progress.NAMES, progress.progress),
]

# scenario: (field, baseline scenario); ratio_to_raw = value / the baseline's value, where
# the group did not already pair them round by round
RAW_BASELINES = {
    "actornet-latency": ("p50_ms", "raw-relay-latency"),
    "actornet-pipelined": ("req_per_s", "raw-relay-pipelined"),
    "actornet-inproc-pipelined": ("req_per_s", "raw-relay-pipelined"),
    "fileshare-64m": ("mb_per_s", "raw-copy-64m"),
}
# peer scenario: the actornet scenario it is compared with (actornet_ratio, by req/s)
PEER_COUNTERPARTS = {
    "norfab": "actornet-pipelined",
    "crossbar-latency": "actornet-latency",
    "crossbar-pipelined": "actornet-pipelined",
}
TARGETS = [
    ("actornet-pipelined", "ratio_to_raw", ">=", 0.8, "req/s >= 0.8 x raw-relay-pipelined"),
    ("actornet-latency", "ratio_to_raw", "<=", 1.3, "p50 <= 1.3 x raw-relay-latency"),
    ("crossbar-pipelined", "actornet_ratio", ">=", 5, "actornet-pipelined >= 5 x crossbar"),
    ("norfab", "actornet_ratio", ">=", 50, "actornet-pipelined >= 50 x norfab"),
    ("actornet-body-1m", "cpu_ratio_1m_1k", "<=", 3, "dispatcher CPU/msg 1m <= 3 x 1k"),
    ("actornet-echo-body-1m", "dispatcher_cpu_ratio", "<=", 1.2,
     "dispatcher CPU/msg <= 1.2 x relay's"),
    ("actornet-echo-body-1m", "worker_cpu_ratio", "<=", 1.2,
     "worker CPU/msg <= 1.2 x raw worker's"),
    ("fileshare-64m", "ratio_to_raw", ">=", 0.5, "MB/s >= 0.5 x raw-copy-64m"),
    ("scale-1000", "ratio_to_scale_1", ">=", 0.9, "req/s >= 0.9 x scale-1"),
    ("scale-1000", "kib_per_idle_actor", "<=", 50, "<= 50 KiB per idle actor"),
    ("idle-1000", "dispatcher_cpu_pct", "<=", 5, "dispatcher <= 5 % of a core"),
    ("actornet-pipelined-journal", "ratio_to_pipelined", ">=", 0.7,
     "req/s >= 0.7 x actornet-pipelined"),
    ("federated-local", "ratio_to_unfederated", ">=", 0.95,
     "req/s >= 0.95 x unfederated-pipelined"),
]
_COMPARE = {">=": operator.ge, "<=": operator.le}
RATIOS = ("ratio_to_raw", "actornet_ratio", "ratio_to_unfederated", "ratio_to_local",
          "ratio_to_nats", "ratio_to_pipelined")
"""The table's ratio column: the first of these a line has."""


def annotate(result, results):
    """Add the ratios and targets that ``results`` (earlier lines) make possible."""
    name = result["scenario"]
    if "skipped" in result or "error" in result:
        return result
    if name in RAW_BASELINES and "ratio_to_raw" not in result:
        field, baseline = RAW_BASELINES[name]
        base = results.get(baseline, {}).get(field)
        if base:
            result["ratio_to_raw"] = result[field] / base
    counterpart = results.get(PEER_COUNTERPARTS.get(name), {}).get("req_per_s")
    if counterpart and result.get("req_per_s"):
        result["actornet_ratio"] = counterpart / result["req_per_s"]
    for scenario, field, op, bound, text in TARGETS:
        if scenario == name and result.get(field) is not None:
            result.setdefault("targets", []).append(
                {"target": text, "value": result[field],
                 "met": _COMPARE[op](result[field], bound)})
    return result


def selected(only):
    """The groups to run: each name picks its group (a scenario runs with its group)."""
    if not only:
        return GROUPS
    names = {n.strip() for n in only.split(",") if n.strip()}
    known = {g for g, _, _ in GROUPS} | {s for _, members, _ in GROUPS for s in members}
    unknown = names - known
    if unknown:
        sys.exit(f"unknown scenario {', '.join(sorted(unknown))}; run with --list")
    return [g for g in GROUPS if g[0] in names or names & set(g[1])]


def _round(value):
    if isinstance(value, float):
        return round(value, 3 if abs(value) < 100 else 1)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def table(lines, elapsed):
    """The human-readable summary."""
    out = [f"{'scenario':<30} {'rate':>16} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7}  notes"]
    for r in lines:
        if "skipped" in r or "error" in r:
            out.append(f"{r['scenario']:<30} {'skipped' if 'skipped' in r else 'ERROR':>16}  "
                       f"{r.get('skipped') or r.get('error')}")
            continue
        if "mb_per_s" in r:
            rate = f"{r['mb_per_s']:,.1f} MB/s"
        elif "req_per_s" in r:
            rate = f"{r['req_per_s']:,.0f} req/s"
        elif "events_per_s" in r:
            rate = f"{r['events_per_s']:,.0f} ev/s"
        else:
            rate = f"{r['dispatcher_cpu_pct']:.2f} % CPU"
        ratio = next((r[key] for key in RATIOS if key in r), None)
        out.append(f"{r['scenario']:<30} {rate:>16} {_cell(r.get('p50_ms'))} "
                   f"{_cell(r.get('p99_ms'))} {_cell(ratio, 7, 2)}  {_notes(r)}")
    out += ["", "targets"]
    for r in lines:
        for t in r.get("targets", []):
            verdict = "met" if t["met"] else "MISSED"
            out.append(f"  {r['scenario']:<21} {t['target']:<40} {t['value']:>9.3f}  {verdict}")
    wanted = {scenario for scenario, *_ in TARGETS}
    have = {r["scenario"] for r in lines if r.get("targets")}
    for name in sorted(wanted & {r["scenario"] for r in lines} - have):
        out.append(f"  {name:<21} (no baseline in this run)")
    out.append(f"\nran in {elapsed:.0f} s; JSON lines on stdout, this table on stderr")
    return "\n".join(out)


def _cell(value, width=9, digits=3):
    return f"{value:>{width}.{digits}f}" if isinstance(value, int | float) else " " * width


def _notes(r):
    notes = []
    if r.get("cpu_us_per_req"):
        notes.append("cpu us/req " + " ".join(
            f"{k} {v:.0f}" for k, v in r["cpu_us_per_req"].items() if round(v)))
    elif r.get("cpu_us_per_event"):
        notes.append("cpu us/event " + " ".join(
            f"{k} {v:.1f}" for k, v in r["cpu_us_per_event"].items()))
        notes.append(f"job ms {r['job_ms']:.0f}")
    elif r.get("cpu_pct"):
        notes.append("cpu% " + " ".join(f"{k} {v:.0f}" for k, v in r["cpu_pct"].items()))
    for key in ("cpu_us_per_msg", "extra_in_copies", "kib_per_idle_actor",
                "dispatcher_rss_kib", "errors", "dropped"):
        if r.get(key):
            notes.append(f"{key} {r[key]:,.4g}" if isinstance(r[key], float)
                         else f"{key} {r[key]:,}")
    return "; ".join(notes)


def interpreter(python):
    """What ``python`` is (e.g. "PyPy 7.3.19 (Python 3.11.11)"); exits if it cannot
    import what a dispatcher needs."""
    probe = ("import platform, sys, actornet.tap, cbor2, twisted; "
             "impl = platform.python_implementation(); "
             "v = getattr(sys, 'pypy_version_info', sys.version_info)[:3]; "
             "print(impl, '.'.join(map(str, v)), f'(Python {platform.python_version()})')")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                          cwd=BENCH.parent, check=False)
    if done.returncode:
        sys.exit(f"--dispatcher-python {python} cannot run a dispatcher:\n{done.stderr}")
    return done.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (< 3 min)")
    parser.add_argument("--only", help="comma-separated scenario or group names")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--dispatcher-python", metavar="PYTHON",
                        help="run every dispatcher process under this interpreter (e.g. PyPy)")
    parser.add_argument("--warmup", type=float, metavar="SECONDS",
                        help="warmup before each round (default 2, quick 0.5)")
    args = parser.parse_args()
    if args.list:
        for group, members, _ in GROUPS:
            print(f"{group}: {', '.join(members)}")
        return
    dispatcher_python = None
    if args.dispatcher_python:
        dispatcher_python = interpreter(args.dispatcher_python)
        print(f"dispatchers run under {args.dispatcher_python}: {dispatcher_python}",
              file=sys.stderr, flush=True)
    raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_dir = BENCH / ".runs" / "last"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    settings = scenarios.Settings.make(args.quick, run_dir, args.dispatcher_python, args.warmup)
    started = time.monotonic()
    lines = []
    try:
        for group, members, run in selected(args.only):
            print(f"[{time.monotonic() - started:5.0f}s] {group} ...", file=sys.stderr,
                  flush=True)
            try:
                results = run(settings)
            except Exception as e:
                traceback.print_exc(file=sys.stderr)
                results = [{"scenario": name, "error": f"{type(e).__name__}: {e}"}
                           for name in members]
            for result in results:
                result = _round(annotate(result, settings.results))
                if dispatcher_python:
                    result["dispatcher_python"] = dispatcher_python
                settings.results[result["scenario"]] = result
                lines.append(result)
                print(json.dumps(result), flush=True)
    finally:
        stop_all()
    print("\n" + table(lines, time.monotonic() - started), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
