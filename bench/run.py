"""Every benchmark in one run, printed as one table: ``.venv/bin/python -m bench.run``.

Scenario A (bench/plain_callbacks.py) then scenario B (bench/slow_callbacks.py); see
bench/README.md for what each figure means. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import os
import platform
import sys
import time

COLUMNS = (
    "scenario",
    "server",
    "answers",
    "req/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "<=5 s",
    "errors",
    "notes",
)


def print_table(rows: list[dict[str, str]]) -> None:
    widths = {c: max([len(c)] + [len(row.get(c, "")) for row in rows]) for c in COLUMNS}
    numeric = set(COLUMNS) - {"scenario", "server", "notes"}

    def cell(column: str, text: str) -> str:
        width = widths[column]
        return text.rjust(width) if column in numeric else text.ljust(width)

    print(" | ".join(cell(c, c) for c in COLUMNS).rstrip())
    print("-+-".join("-" * widths[c] for c in COLUMNS))
    for row in rows:
        print(" | ".join(cell(c, row.get(c, "")) for c in COLUMNS).rstrip())


def print_scenario(
    name: str, rows: list[dict[str, str]], sections: list[tuple[str, list[str]]], started: float
) -> None:
    """One scenario run on its own: its table, then titled blocks of lines, then its duration."""
    print_table(rows)
    for title, lines in sections:
        print(f"\n{title}")
        print("\n".join(lines))
    print(f"\n({name} took {time.monotonic() - started:.0f} s)")


def main() -> int:
    from . import plain_callbacks, slow_callbacks
    from .wrkrun import wrk_path

    started = time.monotonic()
    print(
        f"WeCom callback service benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load generator {os.environ.get('BENCH_LOADGEN') or ('wrk' if wrk_path() else 'python')}"
    )
    sys.stdout.flush()
    plain = plain_callbacks.run_plain()
    slow = slow_callbacks.run_slow()

    print()
    print_table(plain_callbacks.table(plain) + slow_callbacks.table(slow))
    print("\nRatios (scenario A: medians over rounds; max = worst round):")
    print("\n".join(plain_callbacks.ratios(plain)))
    print("\n".join(slow_callbacks.ratios(slow)))
    print("\nScenario A details:")
    print("\n".join(plain_callbacks.details(plain)))
    print("\nScenario B details:")
    print("\n".join(slow_callbacks.details(slow)))
    print(f"\nWhole benchmark: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
