"""Comparisons made in pairs: each pair is one run of each variant of the server's settings,
with the same players, back to back, the variants taking turns in one order and then the
other. The machine's own drift over minutes then falls on both runs of a pair, and neither
variant always runs first: identical servers run in one order differed by 11 ms at the
50-player median first text, the first of each pair the slower."""
from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import ttest_1samp

from benchmarks.processes import CPU_PARTS
from benchmarks.stats import COMPARED, Row, players_text

# What a comparison's paired change must stay within: issue targets such as "pictures change
# the added time to first text by < 2 ms".
PAIRED_LIMIT = 0.002


@dataclass
class PairedChange:
    """What a variant changes in one measure, from its runs and the base's, pair by pair."""

    differences: list[float]  # pair by pair, the variant's percentile minus the base's (seconds)
    mean: float
    low: float                # the mean's 95 % confidence interval (Student's t)
    high: float

    def within(self, limit: float) -> bool:
        """The whole interval lies inside ±limit: the change is shown to be smaller than it."""
        return -limit < self.low and self.high < limit


def paired_change(base: list[Row], variant: list[Row], name: str, q: float = 50) -> PairedChange | None:
    """`name`'s q-th percentile in each of `variant`'s runs minus that in the base's run of
    the same pair; None with fewer than two pairs."""
    differences = [v - b for base_row, variant_row in zip(base, variant, strict=True)
                   if (b := base_row.p(name, q)) is not None and (v := variant_row.p(name, q)) is not None]
    if len(differences) < 2:
        return None
    mean = sum(differences) / len(differences)
    if len(set(differences)) == 1:  # no spread: the interval is the value itself
        return PairedChange(differences, mean, mean, mean)
    interval = ttest_1samp(differences, 0.0).confidence_interval(0.95)
    return PairedChange(differences, mean, float(interval.low), float(interval.high))


def turn_order(variants: dict[str, dict[str, str]], turn: int) -> list[tuple[str, dict[str, str]]]:
    """The variants in one order, then the other: neither always runs first (on a fresh
    model, or just after the other's server stopped)."""
    order = list(variants.items())
    return order[::-1] if turn % 2 else order


def paired_lines(players: int, runs: dict[str, list[Row]]) -> list[str]:
    """With two variants run in pairs: the second's change, pair by pair, with its 95 %
    interval and whether that is within PAIRED_LIMIT; and each run's server CPU per chapter
    (the same work: it moves with the machine's own speed), split into CPU_PARTS where the
    runs measured them."""
    if len(runs) != 2 or len(next(iter(runs.values()))) < 2:
        return []
    (base, base_rows), (variant, variant_rows) = runs.items()
    who = players_text(players)
    lines = []
    for name, measure in COMPARED:
        change = paired_change(base_rows, variant_rows, name)
        if change is None:
            continue
        verdict = (f"within ±{PAIRED_LIMIT * 1e3:.0f} ms" if change.within(PAIRED_LIMIT)
                   else f"not shown within ±{PAIRED_LIMIT * 1e3:.0f} ms")
        lines.append(f"- {who}, {measure} p50, {variant} − {base} pair by pair: "
                     + ", ".join(f"{d * 1e3:+.1f}" for d in change.differences)
                     + f" ms; mean {change.mean * 1e3:+.1f} ms, 95 % interval {change.low * 1e3:+.1f} "
                     f"to {change.high * 1e3:+.1f} ms: {verdict}")
    cpu = "; ".join(f"{label} " + _per_run(rows, lambda row: row.cpu_per_chapter_ms) for label, rows in runs.items())
    lines.append(f"- {who}, the server's CPU per chapter, run by run: {cpu} ms")
    if all(row.cpu_parts for rows in runs.values() for row in rows):
        parts = "; ".join(f"{label}: " + ", ".join(
            f"{part} {_per_run(rows, lambda row, part=part: row.cpu_part_per_chapter_ms(part))}" for part in CPU_PARTS)
            for label, rows in runs.items())
        lines.append(f"- {who}, of which, run by run: {parts} ms")
    return lines


def _per_run(rows: list[Row], value) -> str:
    return ", ".join("–" if (ms := value(row)) is None else f"{ms:.0f}" for row in rows)
