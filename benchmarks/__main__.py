"""`python -m benchmarks [--quick | --players 1,10,50,200 --chapters K] [--local]`: runs each
load level against a fresh server process, then writes benchmarks/results/latest.md and
latency.png (and, for a full run, copies them to benchmarks/report.md and latency.png)."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import report
from benchmarks.load import JOB_WORKERS, TIMINGS, run_level, scripted_server
from benchmarks.pairs import paired_lines, turn_order
from benchmarks.players import think_range
from benchmarks.processes import (
    SERVER_CORES,
    ModelProcess,
    machine_load,
    relay_server,
    start_profiler,
    stop_profiler,
    stop_server,
)
from benchmarks.scale import compare_scale
from benchmarks.stats import (
    COMPARED,
    Row,
    error_kinds,
    first_text_breakdown,
    picture_breakdown,
    players_text,
    pooled,
    summarize,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MAX_CHAPTERS = 8  # chapters 2..9: chapter 10 (the conclusion) offers no choice to stream from

FULL_LEVELS = [1, 10, 50, 200]
# --images: the image model takes 3 s; the helper's scene (a one-sentence reply) 0.5 s, where a
# summary (a paragraph) takes TIMINGS' 2 s. Image workers enough for 50 players' chapters.
IMAGE_KNOBS = {"image_latency": 3.0, "helper_latencies": {"PICTURE": 0.5}}
IMAGE_WORKERS = 16
# The players' think time in the pictures comparison, pictures on or off: they stay on a
# chapter until its picture is seen (at most 4 s after `close`), as a reader does. A page
# is sent only the picture of the chapter it shows: one that players left within 1-3 s, as
# elsewhere, would mostly not be sent at all.
PICTURE_THINK = (4.5, 6.5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 and 10 players, 2 chapters (under a minute)")
    parser.add_argument("--players", default=",".join(map(str, FULL_LEVELS)),
                        help="comma-separated player counts (for a comparison: in place of its own levels)")
    parser.add_argument("--chapters", type=int, default=3, help=f"htmx chapters per player (1..{MAX_CHAPTERS})")
    parser.add_argument("--local", action="store_true", help="also measure the embedded local model")
    parser.add_argument("--profile", nargs="?", const="svg", choices=["svg", "txt"],
                        help="py-spy the server during the largest level (of each variant, in a "
                             "comparison): results/profile-N.svg (flame graph) or .txt (collapsed stacks); "
                             "the bare relay's beside it, results/profile-relay-N")
    parser.add_argument("--jobs", action="store_true",
                        help="compare streams with deferred jobs running and switched off (1 and 10 players)")
    parser.add_argument("--loop-preview", action="store_true",
                        help="compare the loop guard's 4-word preview (the default) with LOOP_PREVIEW_WORDS=0 "
                             "(1 and 50 players)")
    parser.add_argument("--screen", action="store_true",
                        help="compare the stream with its child-safety screen on and off (1 and 50 players)")
    parser.add_argument("--images", action="store_true",
                        help="compare streams with pictures being drawn (image model 3 s) and without "
                             "(1 and 50 players)")
    parser.add_argument("--noise", action="store_true",
                        help="the --images comparison's server without pictures against itself: how far two "
                             "identical runs differ, the floor under every comparison's change")
    parser.add_argument("--repeat", type=int, default=1,
                        help="in a comparison, run each level this many times, the variants taking turns "
                             "(in one order, then the other), and pool the runs' chapters")
    parser.add_argument("--no-relay", action="store_true",
                        help="leave out the bare relay's row at each level (benchmarks/relay.py)")
    parser.add_argument("--cpu", action="store_true",
                        help="split the server's CPU into a cost per token and a cost per chapter, for the "
                             "bare relay and Lanternpath (at --players)")
    parser.add_argument("--filters", action="store_true",
                        help="the stream's text filters' CPU per token, stage by stage (no server; seconds): "
                             "benchmarks/filters.py")
    parser.add_argument("--scale", action="store_true",
                        help="PostgreSQL and Redis with 1 and 2 worker processes, at 200 and 400 players "
                             "(or --players): benchmarks/scale.py")
    parser.add_argument("--postgres", help="for --scale: a PostgreSQL URL whose user may create databases")
    parser.add_argument("--redis", help="for --scale: a Redis URL")
    parser.add_argument("--own-core", action="store_true",
                        help="run the server's process on a core of its own; its background processes, the "
                             "players, the scripted model and the picture follower on the other cores, the "
                             "players' loop and the model first (benchmarks/processes.py ServerCores)")
    parser.add_argument("--think", type=think_range, metavar="MIN,MAX",
                        help="the players' think time in a comparison, in seconds (the pictures comparison's own "
                             f"is {PICTURE_THINK[0]},{PICTURE_THINK[1]}; the others' 1,3)")
    parser.add_argument("--seed", type=int, default=7,
                        help="the players' start times, worlds, topics, choices and think times")
    parser.add_argument("--adventure-seed", type=int,
                        help="ADVENTURE_SEED of every server started: each adventure has that seed's plan, "
                             "questions and offer, so two runs compare chapter for chapter (unset: a random "
                             "seed for each adventure, as for players)")
    args = parser.parse_args(argv)
    args.players_given = any(a == "--players" or a.startswith("--players=") for a in (argv or sys.argv[1:]))
    if args.quick:
        args.players, args.chapters = "1,10", 2
    args.levels = sorted({int(p) for p in args.players.split(",") if p.strip()})
    args.chapters = max(1, min(args.chapters, MAX_CHAPTERS))
    return args


def run_relay(model: ModelProcess, workdir: Path, players: int, chapters: int, seed: int,
              profile: Path | None = None, **knobs) -> Row:
    """The bare relay at one level, on a fresh process: the floor of this stack's CPU per token.
    `profile`: where to write its py-spy profile, to set beside the server's."""
    relay = relay_server(model, workdir, f"relay-{players}")
    spy = start_profiler(relay.process.pid, profile) if profile else None
    try:
        row = summarize(run_level(model, relay, players, chapters, seed, label="bare relay", jobs=False, **knobs))
    finally:
        stop_profiler(spy)
        stop_server(relay)
    print(f"{players:>4} players, bare relay: {row.cpu_per_token_us:.0f} µs CPU per token", flush=True)
    return row


def run_scripted(args, workdir: Path) -> tuple[list[Row], list[str]]:
    """Each level on a fresh server (a clean memory baseline); --quick shares one to save time."""
    rows, notes = [], []
    model = ModelProcess(workdir / "scripted-model.log").start()
    shared = scripted_server(model, workdir, "bench-quick") if args.quick else None
    try:
        for players in args.levels:
            profiling = args.profile and players == args.levels[-1]
            if not args.no_relay:
                rows.append(run_relay(model, workdir, players, args.chapters, args.seed,
                                      RESULTS / f"profile-relay-{players}.{args.profile}" if profiling else None))
            started = time.monotonic()
            server = shared or scripted_server(model, workdir, f"bench-{players}")
            path = RESULTS / f"profile-{players}.{args.profile}"
            spy = start_profiler(server.process.pid, path) if profiling else None
            try:
                level = run_level(model, server, players, args.chapters, args.seed)
            finally:
                stop_profiler(spy)
                if server is not shared:
                    stop_server(server)
            rows.append(summarize(level))
            notes += [f"{players} players: {note}" for note in level.notes]
            notes.append(f"{players} players: {level.jobs_backlog} deferred jobs pending or running when the players "
                         f"stopped; the server's CPU while it ran them, {level.jobs_cpu_seconds:.1f} s, counts in its "
                         "CPU per token")
            if kinds := error_kinds(level):
                notes.append(f"{players} players, errors: {kinds}")
            if players == 1:
                notes += [f"1 player, {name}: {value:.1f} ms (p50)"
                          for name, value in first_text_breakdown(level).items() if value is not None]
            print(f"{players:>4} players: {len(level.records)} chapters in {level.wall:.0f} s "
                  f"(level {time.monotonic() - started:.0f} s)", flush=True)
    finally:
        if shared:
            stop_server(shared)
        model.stop()
    return rows, notes


def compare_jobs(args, workdir: Path) -> str:
    """Streams with deferred jobs running and switched off: what deferred work adds."""
    return compare(args, workdir, "Deferred jobs on and off", "jobs", (1, 10),
                   {"on": {}, "off": {"JOB_CONCURRENCY": "0"}})


def compare_loop_preview(args, workdir: Path) -> str:
    """The strict loop guard (LOOP_PREVIEW_WORDS=0) against the default 4-word preview: what its holds add."""
    return compare(args, workdir, "Loop guard: strict and with a 4-word preview", "LOOP_PREVIEW_WORDS", (1, 50),
                   {"0": {"LOOP_PREVIEW_WORDS": "0"}, "4": {}})


def compare_screen(args, workdir: Path) -> str:
    """The stream with its child-safety screen and without it: what the screen adds."""
    return compare(args, workdir, "Child-safety screen on and off", "screen", (1, 50),
                   {"on": {}, "off": {"SCREEN_STREAM": "false"}})


def compare_images(args, workdir: Path) -> str:
    """Streams while pictures are drawn (the scripted image model takes 3 s) and without
    pictures: what drawing them adds, and how soon after `close` each picture is seen."""
    pictures = {"IMAGE_MODEL": "openai/scripted-images", "IMAGE_CONCURRENCY": str(IMAGE_WORKERS)}
    notes: list[str] = []
    first_text: list[str] = []  # each run's steps to the first text
    seen: set[int] = set()

    def breakdown(players: int, label: str, level) -> None:
        steps = "; ".join(f"{name} {value:.1f}" for name, value in first_text_breakdown(level).items()
                          if value is not None)
        first_text.append(f"- {players_text(players)}, pictures {label}: {steps} ms (p50)")
        if label == "on" and players not in seen:  # the first run of the level
            seen.add(players)
            notes.extend(f"- {players_text(players)}, {name}: {p50:.0f} / {p99:.0f} ms (p50 / p99)"
                         for name, value in picture_breakdown(level).items() if value is not None
                         for p50, p99 in [value])

    table = compare(args, workdir, "Pictures on and off", "pictures", (1, 50), {"off": {}, "on": pictures},
                    knobs=IMAGE_KNOBS, on_level=breakdown, think=PICTURE_THINK)
    knobs = ", ".join(f"{k}={v}" for k, v in IMAGE_KNOBS.items())
    think = args.think or PICTURE_THINK
    return "\n".join([table, "", f"Think time {think[0]}–{think[1]} s, pictures on and off. "
                      f"Scripted model for pictures: {knobs}; IMAGE_CONCURRENCY={IMAGE_WORKERS}; "
                      f"{machine_load()}; {code_version()}.", "", *notes, "", "From a choice to its first text, "
                      "run by run:", "", *first_text])


def compare_noise(args, workdir: Path) -> str:
    """The pictures comparison's server without pictures, twice: any change it finds is the
    machine's own run-to-run noise, the floor under the other comparisons' changes."""
    table = compare(args, workdir, "The same server twice", "run", (1, 50), {"first": {}, "again": {}},
                    knobs=IMAGE_KNOBS, think=PICTURE_THINK)
    return "\n".join([table, "", f"{machine_load()}; {code_version()}."])


def compare(args, workdir: Path, title: str, column: str, levels: tuple[int, ...],
            variants: dict[str, dict[str, str]], knobs: dict | None = None, on_level=None,
            think: tuple[float, float] | None = None) -> str:
    """The same levels once per variant of the server's settings, each on a fresh server;
    the table is returned (with two variants and several runs, the second's change pair by
    pair), the plot written to results/ under the column's name. `knobs`:
    more of the scripted model's script; `on_level(players, label, level)` sees each level;
    `think`: the players' think time (run_level's). `--players` given: its levels instead."""
    levels = tuple(args.levels) if args.players_given else levels
    think = args.think or think
    model = ModelProcess(workdir / "scripted-model.log").start()
    results, pairs = [], []
    lines = [f"## {title}", "",
             f"| players | {column} | chapters | added first text p50 / p99 (ms) | worst added gap p50 / p99 (ms) "
             "| picture seen after close p50 / p99 / max (s) | players' loop lag p99 (ms) "
             "| CPU server / model / players (% of a core) |",
             "|---:|---|---:|---|---|---|---:|---|"]
    try:
        for players in levels:
            runs: dict[str, list[Row]] = {label: [] for label in variants}
            for turn in range(max(1, args.repeat)):
                for label, settings in turn_order(variants, turn):
                    server = scripted_server(model, workdir, f"compare-{players}-{label}-{turn}", **settings)
                    profiling = args.profile and players == levels[-1] and turn == 0
                    path = RESULTS / f"profile-{column.lower()}-{label}-{players}.{args.profile}"
                    spy = start_profiler(server.process.pid, path) if profiling else None
                    try:
                        level = run_level(model, server, players, args.chapters, args.seed + turn, think=think,
                                          **(knobs or {}))
                    finally:
                        stop_profiler(spy)
                        stop_server(server)
                    runs[label].append(summarize(level))
                    if on_level is not None:
                        on_level(players, label, level)
            for label, rows in runs.items():
                row = pooled(rows)
                first, gap = (_pooled_and_runs(row, rows, name) for name, _ in COMPARED)
                seen = " / ".join("–" if (v := row.p("picture_after_close", q)) is None else f"{v:.2f}"
                                  for q in (50, 99, 100))
                seen += f" ({len(row.picture_after_close)} of {row.chapters_ok})" if row.picture_after_close else ""
                cpu = f"{row.server_cpu:.0f} / {row.model_cpu:.0f} / {row.players_cpu:.0f}"
                lines.append(f"| {players} | {label} | {row.chapters_ok} | {first} | {gap} | {seen} "
                             f"| {row.client_lag_p99 * 1e3:.1f} | {cpu} |")
                results.append((players, label, row))
                print(lines[-1], flush=True)
            pairs.extend(paired_lines(players, runs))
    finally:
        model.stop()
    report.plot_comparison(title, results, RESULTS / f"{column.lower().replace('_', '-')}.png")
    return "\n".join(lines + ([""] + pairs if pairs else []))


def _pooled_and_runs(row: Row, rows: list[Row], name: str) -> str:
    """p50 / p99 in ms of the pooled runs, and each run's p50 when there are several."""
    text = " / ".join(f"{row.p(name, q) * 1e3:.1f}" for q in (50, 99))
    if len(rows) > 1:
        text += " (runs' p50: " + ", ".join(f"{r.p(name, 50) * 1e3:.1f}" for r in rows) + ")"
    return text


def code_version() -> str:
    """The commit measured, and whether service/ had uncommitted edits (others work alongside)."""
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=HERE.parent, capture_output=True, text=True, timeout=10)
        return done.stdout.strip()
    try:
        dirty = len(git("status", "--porcelain", "--", "service", "templates").splitlines())
        return f"commit {git('rev-parse', '--short', 'HEAD')}" + (f" + {dirty} uncommitted files" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "commit unknown"


def measure_filters(_args, _workdir: Path) -> str:
    """The text filters alone: benchmarks/filters.py."""
    from benchmarks import filters

    results = filters.measure()
    filters.plot(results, RESULTS / "filters.png")
    return "\n".join([filters.table(results), "", f"{machine_load()}; {code_version()}."])


def compare_cpu(args, workdir: Path) -> str:
    """The server's CPU split into what each token costs and what each chapter costs besides,
    for the bare relay and Lanternpath alike: each runs the same level twice, the model's
    STORY chapters once as they are and once twice as long (see stats.token_and_chapter_cpu)."""
    from benchmarks.stats import token_and_chapter_cpu

    model = ModelProcess(workdir / "scripted-model.log").start()
    lines = ["## CPU per token and per chapter", "",
             "| players | server | tokens (as they are / longer) | CPU s (as they are / longer) | all-in µs per token "
             "| token path µs per token | per chapter outside the token path (ms) "
             "| jobs queued at the players' end / CPU s running them (as they are) |",
             "|---:|---|---|---|---:|---:|---:|---|"]
    try:
        for players in args.levels:
            for label in ("bare relay", "lanternpath"):
                runs = []
                for stories in (1, 2):
                    knobs = {"story_variants": stories}
                    if label == "bare relay":
                        runs.append(run_relay(model, workdir, players, args.chapters, args.seed, **knobs))
                        continue
                    server = scripted_server(model, workdir, f"cpu-{players}-{stories}")
                    try:
                        runs.append(summarize(run_level(model, server, players, args.chapters, args.seed, **knobs)))
                    finally:
                        stop_server(server)
                short, long = runs
                split = token_and_chapter_cpu(short, long)
                token, chapter = ("–", "–") if split is None else (f"{split[0]:.0f}", f"{split[1]:.1f}")
                lines.append(f"| {players} | {label} | {short.tokens} / {long.tokens} "
                             f"| {short.cpu_seconds:.1f} / {long.cpu_seconds:.1f} | {short.cpu_per_token_us:.0f} "
                             f"| {token} | {chapter} | {short.jobs_backlog} / {short.jobs_cpu_seconds:.1f} |")
                print(lines[-1], flush=True)
    finally:
        model.stop()
    return "\n".join(lines + ["", f"The CPU counts the deferred jobs (summaries, characters) of every chapter: "
                                   f"those still queued when the players stopped ran before it was read "
                                   f"(JOB_CONCURRENCY={JOB_WORKERS}). {machine_load()}; {code_version()}."])
def _adventures(args) -> str:
    if args.adventure_seed is None:
        return "a random seed per adventure"
    return f"every adventure with seed {args.adventure_seed}"


def compose(args, rows: list[Row], notes: list[str], local_md: str) -> str:
    timings = ", ".join(f"{k}={v * 1e3:.0f} ms" for k, v in TIMINGS.items())
    parts = [
        "# Lanternpath benchmark", "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; scripted model ({timings}); "
        f"{args.chapters} htmx chapters per player after chapter 1; think time 1–3 s; {_adventures(args)}; "
        f"{machine_load()}; "
        f"{code_version()}.", "",
        "## Results", "", report.results_table(rows), "",
        "Each chapter is matched to its own model request by the tag the scripted model opens "
        "every streamed reply with (\"[r17] \"); unmatched = finished chapters whose first chunk "
        "names no logged request (errors, left out of the added times). "
        "Added first text = the player's time from sending the choice POST to the first `chunk` "
        "event, minus that request's own TTFT as the model process measured it (first token sent "
        "− request received). Worst added gap = the worst gap between the chapter's `chunk` "
        "events at the player minus the worst gap between that request's own chunk sends in the "
        "model. The Context table keeps the same two numbers taken against the nominal settings "
        "instead (TTFT 300 ms, 20 ms a token). "
        "Old = summary call + character call + whole reply + first replayed word, "
        "computed from the nominal timings with zero overhead; worst = fastest old ÷ p99 new.", "",
        "## Targets", "", report.targets_table({r.players: r for r in rows if r.server == "lanternpath"},
                                               {r.players: r for r in rows if r.server == "bare relay"}), "",
        "## Context", "", report.context_table(rows), "",
        *[f"- {note}" for note in notes],
    ]
    if local_md:
        parts += ["", local_md]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Every server the benchmark starts inherits this process's environment.
    os.environ.pop("ADVENTURE_SEED", None)
    if args.adventure_seed is not None:
        os.environ["ADVENTURE_SEED"] = str(args.adventure_seed)
    if args.own_core:
        SERVER_CORES.keep_one()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lanternpath-bench-") as tmp:
        workdir = Path(tmp)
        comparisons = ((args.jobs, compare_jobs, "jobs.md"),
                       (args.loop_preview, compare_loop_preview, "loop-preview.md"),
                       (args.screen, compare_screen, "screen.md"),
                       (args.images, compare_images, "images.md"),
                       (args.noise, compare_noise, "noise.md"),
                       (args.cpu, compare_cpu, "cpu.md"),
                       (args.filters, measure_filters, "filters.md"),
                       (args.scale, lambda a, w: compare_scale(a, w, code_version()), "scale.md"))
        for wanted, run, name in comparisons:
            if wanted:
                text = run(args, workdir) + "\n"
                (RESULTS / name).write_text(text)
                print(text)
        if any(wanted for wanted, _, _ in comparisons):
            return
        rows, notes = run_scripted(args, workdir) if args.levels else ([], [])
        local_md = ""
        if args.local:
            from benchmarks.local_model import measure_local

            local_md = measure_local(workdir)
        text = compose(args, rows, notes, local_md)
        for log in workdir.glob("*.log"):
            shutil.copy(log, RESULTS / log.name)
    (RESULTS / "latest.md").write_text(text)
    if rows:
        report.plot([r for r in rows if r.server == "lanternpath"], RESULTS / "latency.png")
    print(text)
    if args.levels == FULL_LEVELS:  # only a run of every load level stands for the report
        shutil.copy(RESULTS / "latest.md", HERE / "report.md")
        if rows:
            shutil.copy(RESULTS / "latency.png", HERE / "latency.png")


if __name__ == "__main__":
    main()
