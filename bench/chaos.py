"""Chaos run: the whole system under load while every part of it is killed in turn.

    uv run python -m bench.chaos [--completions 1000] [--reminders 1000] [--seed 7]
                                 [--duration 90]

Drives recurring-task completions and reminders through the system as `todo-local` runs
it (supervised processes, stand-in sidecars on a durable broker, an embedded PostgreSQL),
SIGKILLs each service at a chosen crash point, crashes each sidecar, restarts PostgreSQL
once, then waits for the pipeline to drain and prints: completions with exactly one
successor, reminders with exactly one notification, webhook deliveries (and duplicates
by delivery id), poison events in the dead-letter topics, restarts, and the recovery
time of each kill. Exits 1 unless nothing was lost or doubled and every killed part was
back within 10 s. See `bench/scenarios/chaos.py` for the crash points.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import structlog

from bench.harness.machine import load_average, start_run
from bench.scenarios.chaos import ChaosOptions, run_chaos


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--completions", type=int, default=1_000)
    parser.add_argument("--reminders", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--duration", type=float, default=90.0, help="seconds the load is spread over"
    )
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start_run("bench/chaos.py")
    # The stand-in's own warnings (retries, crashes) would drown the report.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    report = run_chaos(
        ChaosOptions(
            completions=args.completions,
            reminders=args.reminders,
            seed=args.seed,
            duration=args.duration,
            drain_timeout=args.drain_timeout,
            say=lambda line: print(line, flush=True),
        )
    )
    print()
    print(report.table())
    print(f"\nload average at end {load_average()}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
