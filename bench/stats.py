"""Latency percentiles and medians over rounds (standard library only, so the
peers' virtualenvs can use it too)."""

import statistics


def percentile(ordered, fraction):
    """The nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def one_round(latencies, completed, seconds, errors=0, **extra):
    """What a load generator reports for one measured round.

    @param latencies: seconds per request completed in the round.
    """
    ordered = sorted(latencies)
    return dict(extra, completed=completed, seconds=seconds, errors=errors,
                req_per_s=completed / seconds if seconds > 0 else 0.0,
                p50_ms=percentile(ordered, 0.50) * 1e3,
                p99_ms=percentile(ordered, 0.99) * 1e3)


def medians(rounds):
    """Median request rate and latency percentiles over ``rounds``, plus the spread."""
    rates = [r["req_per_s"] for r in rounds]
    return {
        "req_per_s": statistics.median(rates),
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "rounds": len(rounds),
        "req_per_s_min": min(rates),
        "req_per_s_max": max(rates),
        "errors": sum(r["errors"] for r in rounds),
    }
