"""The benchmark's outputs: the Markdown table (with the targets, met or missed, and where
the time goes) and the PNG plot of latency percentiles against the number of players."""
from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

from benchmarks.stats import COMPARED, Row  # noqa: E402


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1e3:.1f}"


def _percentiles(row: Row, name: str, qs=(50, 95, 99)) -> str:
    return " / ".join(_ms(row.p(name, q)) for q in qs)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def results_table(rows: list[Row]) -> str:
    lines = [
        "| players | server | chapters | errors | unmatched | added first text p50 / p95 / p99 (ms) "
        "| worst added gap p50 / p99 / max (ms) | to close p50 / p95 (s) | peak streams "
        "| RSS peak (MB) | RSS / stream (MB) | marginal / stream (KB) | server CPU | CPU per token (µs) "
        "| first text, new p50 (ms) | old (s) | old ÷ new p50 / worst |",
        "|---:|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        close = " / ".join("–" if (v := r.p("close", q)) is None else f"{v:.2f}" for q in (50, 95))
        old = r.p("old_first_text", 50)
        lines.append(
            f"| {r.players} | {r.server} | {r.chapters_ok} | {r.errors} | {r.unmatched} "
            f"| {_percentiles(r, 'added_first')} "
            f"| {_percentiles(r, 'added_gap', (50, 99, 100))} | {close} | {r.peak_streams} "
            f"| {r.rss_peak_mb:.0f} | {r.rss_per_stream_mb:.2f} | {r.marginal_kb:.0f} | {r.server_cpu:.0f}% "
            f"| {'–' if r.cpu_per_token_us is None else f'{r.cpu_per_token_us:.0f}'} "
            f"| {_ms(r.p('first_text', 50))} | {'–' if old is None else f'{old:.2f}'} "
            f"| {_ratio(r.ratio_p50)} / {_ratio(r.ratio_worst)} |")
    return "\n".join(lines)


def context_table(rows: list[Row]) -> str:
    lines = ["| players | server | choice POST p50 / p99 (ms) | model's own TTFT p50 / p99 (ms) "
             "| model's own worst gap − 20 ms, p99 (ms) | added first text vs nominal TTFT p50 / p99 (ms) "
             "| worst added gap vs nominal 20 ms p50 / p99 (ms) | players' loop lag p99 (ms) "
             "| CPU server / model / players (% of a core) | other users (cores) |",
             "|---:|---|---|---|---:|---|---|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r.players} | {r.server} | {_percentiles(r, 'post', (50, 99))} "
                     f"| {_percentiles(r, 'model_ttft', (50, 99))} "
                     f"| {_ms(r.p('model_gap', 99))} | {_percentiles(r, 'nominal_first', (50, 99))} "
                     f"| {_percentiles(r, 'nominal_gap', (50, 99))} | {_ms(r.client_lag_p99)} "
                     f"| {r.server_cpu:.0f} / {r.model_cpu:.0f} / {r.players_cpu:.0f} | {max(r.others_cores, 0):.1f} |")
    return "\n".join(lines)


def _target(rows: dict[int, Row], players: int, label: str,
            measure: Callable[[Row], tuple[bool, str]]) -> str:
    row = rows.get(players)
    if row is None:
        return f"| {label} | not run | – |"
    met, number = measure(row)
    return f"| {label} | {number} | {'met' if met else '**missed**'} |"


def _lt(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def targets_table(by_players: dict[int, Row], relay: dict[int, Row] | None = None) -> str:
    def added(q: float, limit_ms: float):
        return lambda r: (_lt(r.p("added_first", q), limit_ms / 1e3), f"{_ms(r.p('added_first', q))} ms")

    def gap(limit_ms: float):
        return lambda r: (_lt(r.p("added_gap", 99), limit_ms / 1e3),
                          f"p99 {_ms(r.p('added_gap', 99))} ms (max {_ms(r.p('added_gap', 100))})")

    def cpu(r: Row):
        floor = (relay or {}).get(r.players)
        if floor is None or not floor.cpu_per_token_us or r.cpu_per_token_us is None:
            return False, "no bare relay row"
        ratio = r.cpu_per_token_us / floor.cpu_per_token_us
        return ratio <= 1.5, (f"{r.cpu_per_token_us:.0f} µs against {floor.cpu_per_token_us:.0f} µs: "
                              f"{ratio:.2f}× (all of the server's CPU per token)")

    def streams(r: Row):
        # An unmatched chapter is an error too: its text did not open with its request's tag.
        met = r.errors == 0 and r.unmatched == 0 and r.peak_streams >= 200
        return met, f"{r.peak_streams} open at once, {r.errors} errors, {r.unmatched} unmatched"

    def ratio(r: Row):
        return _lt(5.0, r.ratio_worst or 0), f"{_ratio(r.ratio_p50)} at p50, {_ratio(r.ratio_worst)} worst case"

    lines = ["| target | measured | |", "|---|---|---|",
             _target(by_players, 1, "added time to first text p50 < 5 ms, 1 player", added(50, 5)),
             _target(by_players, 1, "added time to first text p99 < 25 ms, 1 player", added(99, 25)),
             _target(by_players, 200, "added time to first text p99 < 100 ms, 200 players", added(99, 100)),
             _target(by_players, 50, "worst added gap < 10 ms, 50 players", gap(10)),
             _target(by_players, 200, "worst added gap p99 < 50 ms, 200 players", gap(50)),
             _target(by_players, 200, "CPU per token ≤ 1.5× the bare relay's, 200 players", cpu),
             _target(by_players, 200, "200 concurrent streams, zero errors", streams),
             _target(by_players, 200, "RSS < 300 MB, 200 players",
                     lambda r: (r.rss_peak_mb < 300, f"{r.rss_peak_mb:.0f} MB peak"))]
    for players in sorted(by_players):
        name = f"≥ 5× faster transitions than the old way, {players} players"
        lines.append(_target(by_players, players, name, ratio))
    return "\n".join(lines)


def _clip_ms(value: float | None) -> float:
    return max((value or 0.0) * 1e3, 0.1)  # log axis: a negative or zero overhead shows as 0.1 ms


def plot(rows: list[Row], path) -> None:
    xs = [r.players for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for q, style in ((50, "o-"), (95, "s--"), (99, "^-")):
        left.plot(xs, [_clip_ms(r.p("added_first", q)) for r in rows], style, label=f"added first text p{q}")
    left.plot(xs, [_clip_ms(r.p("added_gap", 99)) for r in rows], "d:", label="worst added gap p99")
    for limit in (5, 10, 25, 100):
        left.axhline(limit, color="grey", linewidth=0.6, linestyle=":")
        left.annotate(f"{limit} ms", (xs[-1], limit), fontsize=7, color="grey", ha="right", va="bottom")
    left.set(xscale="log", yscale="log", xlabel="players", ylabel="ms added to the model's own timing",
             title="Time the server adds (targets dotted)")
    right.plot(xs, [r.p("first_text", 50) for r in rows], "o-", label="streamed, p50")
    right.plot(xs, [r.p("first_text", 99) for r in rows], "^-", label="streamed, p99")
    right.plot(xs, [r.p("old_first_text", 50) for r in rows], "x--", label="old sequential way")
    right.set(xscale="log", yscale="log", xlabel="players", ylabel="seconds",
              title="Time to first text after a choice")
    right.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    right.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for axis in (left, right):
        axis.set_xticks(xs, [str(x) for x in xs])
        axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_comparison(title: str, results: list[tuple[int, str, Row]], path) -> None:
    """A comparison's variants side by side: added first text and worst added gap, p50 and
    p99, per number of players (one group of bars per variant and level)."""
    labels = [f"{players} · {label}" for players, label, _ in results]
    pictures = any(row.picture_after_close for _, _, row in results)
    fig, axes = plt.subplots(1, 3 if pictures else 2, figsize=(18 if pictures else 12, 4.2))
    if pictures:
        _plot_pictures(axes[2], labels, results)
    for axis, (name, heading) in zip(axes, COMPARED, strict=False):  # a third axis: the pictures
        xs = range(len(results))
        for offset, q in ((-0.2, 50), (0.2, 99)):
            axis.bar([x + offset for x in xs], [(row.p(name, q) or 0.0) * 1e3 for _, _, row in results], 0.4,
                     label=f"p{q}")
        axis.set_xticks(list(xs), labels, fontsize=8)
        axis.set(ylabel="ms added to the model's own timing", title=f"{title}: {heading}")
        axis.grid(True, axis="y", alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_pictures(axis, labels: list[str], results: list[tuple[int, str, Row]]) -> None:
    """How long after its chapter's `close` each picture was seen (4 s target dotted)."""
    xs = range(len(results))
    for offset, q in ((-0.2, 50), (0.2, 99)):
        axis.bar([x + offset for x in xs], [row.p("picture_after_close", q) or 0.0 for _, _, row in results], 0.4,
                 label=f"p{q}")
    axis.axhline(4.0, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xticks(list(xs), labels, fontsize=8)
    axis.set(ylabel="seconds after the chapter's close", title="picture seen after close")
    axis.grid(True, axis="y", alpha=0.3)
    axis.legend(fontsize=8)
