"""The figures of scenario B (bench/slow_callbacks.py): one table row and a block per burst."""

from __future__ import annotations

import os

from .common import fmt_ms, median, percentile
from .slow_callbacks import REPLY_DEADLINE, WECOM_BUDGET, Burst

MIB = 2**20
COLUMNS = (
    "scenario",
    "server",
    "sent",
    "<=5 s",
    "%",
    "passive ok",
    "empty",
    "errors",
    "p50 ms",
    "p99 ms",
    "max ms",
    "late sent",
    "dup",
    "lost",
)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def table(bursts: list[Burst]) -> list[dict[str, str]]:
    rows = []
    for burst in bursts:
        late = burst.fake and burst.empty
        rows.append(
            {
                "scenario": f"B {burst.count} x {burst.handler_seconds:g} s",
                "server": burst.label,
                "sent": str(burst.sent),
                "<=5 s": str(burst.within_budget),
                "%": _pct(burst.within_budget, burst.count),
                "passive ok": str(burst.replies_ok),
                "empty": str(burst.empty),
                "errors": str(
                    burst.replies_bad + sum(burst.non_200.values()) + burst.socket_errors
                ),
                "p50 ms": fmt_ms(burst.pct(50)),
                "p99 ms": fmt_ms(burst.pct(99)),
                "max ms": fmt_ms(burst.max),
                "late sent": str(burst.delivered) if late else "-",
                "dup": str(burst.duplicates + burst.also_passive) if burst.fake else "-",
                "lost": str(burst.empty - burst.delivered) if late else "-",
            }
        )
    return rows


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        f"min {fmt_ms(min(values))}, p50 {fmt_ms(percentile(values, 50))}, "
        f"p99 {fmt_ms(percentile(values, 99))}, max {fmt_ms(max(values))} ms"
    )


def details(bursts: list[Burst]) -> list[str]:
    lines = []
    for burst in bursts:
        load = burst.load
        lines.append(
            f"  {burst.label}, {burst.handler_seconds:g} s handlers, burst of {burst.count}:"
        )
        if load is not None:
            workers = "/".join(str(n) for n in burst.nofile_workers)
            lines.append(
                f"    generator: {burst.count} connections opened in {load.open_seconds:.2f} s, "
                f"the callbacks sent within {fmt_ms(load.send_spread)} ms; open files limit: "
                f"generator {burst.nofile_generator}, workers {workers}"
            )
        answered = len(load.samples) if load else 0
        lines.append(
            f"    answered {answered} of {burst.sent} sent; within {WECOM_BUDGET:g} s of the send "
            f"{burst.within_budget} ({_pct(burst.within_budget, burst.count)} %); passive replies "
            f"ok {burst.replies_ok}, bad {burst.replies_bad}; empty {burst.empty}; non-200 "
            f"{dict(burst.non_200)}; socket errors {dict(load.errors) if load else {}}"
        )
        if load and load.samples:
            lines.append(
                f"    latency p50 {fmt_ms(burst.pct(50))}, p99 {fmt_ms(burst.pct(99))}, max "
                f"{fmt_ms(burst.max)} ms; empty answers (deadline {REPLY_DEADLINE:g} s): "
                f"{_spread(burst.empty_latencies)}"
            )
        if burst.app_seconds:
            lines.append(
                f"    the service's own timing (its line per callback, from entering the app): "
                f"{_spread(burst.app_seconds)}; the rest of each latency (queued before the "
                f"app, the way back): {_spread(burst.outside_seconds)}; outcomes "
                f"{dict(burst.outcomes)}"
            )
        if burst.app_seconds_by_worker:
            lines.append(
                "    the service's own timing per worker: "
                + "; ".join(
                    f"pid {pid}: {_spread(burst.app_seconds_by_worker.get(pid, []))}"
                    for pid in burst.worker_pids
                )
            )
        cpu = burst.http_cpu
        if cpu.get("wall"):
            others = cpu["machine"] - cpu["service"] - cpu["generator"] - cpu["fake"]
            lines.append(
                f"    CPU from the burst to its last answer ({cpu['wall']:.2f} s, "
                f"{os.cpu_count()} CPUs): service {cpu['service']:.2f} s, generator "
                f"{cpu['generator']:.2f} s, fake WeCom {cpu['fake']:.2f} s, the rest of the "
                f"machine (other processes, interrupts) {max(others, 0.0):.2f} s"
            )
        if burst.fake:
            times = burst.delivery_times
            when = (
                f"first {times[0]:.2f} s, median {median(times):.2f} s, last {times[-1]:.2f} s "
                "after the burst"
                if times
                else "none"
            )
            lines.append(
                f"    message/send: {burst.delivered} of the {burst.empty} answered empty "
                f"({when}); "
                f"duplicates {burst.duplicates}; also answered passively {burst.also_passive}; "
                f"wrong text {burst.wrong_sends}; sent for callbacks without a good HTTP answer "
                f"{burst.sent_unanswered}; gettoken calls {burst.gettoken_calls}"
            )
        if burst.settled_after is not None:
            lines.append(
                f"    settled (no job running, deferred or in the outbox) "
                f"{burst.settled_after:.2f} s after the burst; service CPU from the burst to "
                f"then {burst.cpu_seconds:.2f} s"
            )
        lines.extend(f"    {note}" for note in burst.notes)
        shares = ", ".join(
            f"pid {pid}: {burst.answered_by.get(pid, 0)} answered, "
            f"{burst.jobs_by_worker.get(pid, 0)} jobs owned"
            for pid in burst.worker_pids
        )
        others = sum(n for pid, n in burst.jobs_by_worker.items() if pid not in burst.worker_pids)
        lines.append(
            f"    store: jobs by state {burst.jobs}; per worker: {shares}"
            + (f"; jobs of other owners {others}" if others else "")
        )
        for pid in burst.worker_pids:
            before, peak = burst.rss_before.get(pid, 0), burst.rss_peak.get(pid, 0)
            lines.append(
                f"    worker {pid}: RSS {before / MIB:.1f} MiB before, peak {peak / MIB:.1f} MiB "
                f"(+{(peak - before) / MIB:.1f}); open files peak {burst.fds_peak.get(pid, 0)}"
            )
        if burst.trouble:
            lines.append(f"    server log: {len(burst.trouble)} error lines, first:")
            lines.extend(f"      {line[:200]}" for line in burst.trouble[:3])
        if burst.warnings:
            lines.append(
                f"    server log: {sum(burst.warnings.values())} warning lines, most common:"
            )
            lines.extend(f"      {n} x {text}" for text, n in burst.warnings.most_common(3))
    return lines


def print_report(bursts: list[Burst]) -> None:
    from .plain_callbacks import print_rows

    print_rows(table(bursts), COLUMNS)
    print()
    print("\n".join(details(bursts)))
