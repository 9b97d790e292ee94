"""The processes a benchmark measures: the scripted model and the Lanternpath server, each
started as its own process on 127.0.0.1, and a sampler of the server's memory and CPU."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.support.server_process import ServerProcess, free_port, start_child


class ModelProcess:
    """`python -m tests.support.scripted_model` in a child process, tuned over HTTP."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> ModelProcess:
        argv = [sys.executable, "-m", "tests.support.scripted_model", "--port", str(self.port)]
        self.process = start_child(argv, self._url("/_script"), self.log_path, timeout=timeout)
        SERVER_CORES.run_first(self.process.pid)
        return self

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def configure(self, **knobs) -> dict:
        """Reset the script and the request log, then set the knobs."""
        httpx.post(self._url("/_reset"), timeout=10).raise_for_status()
        response = httpx.post(self._url("/_script"), content=json.dumps(knobs), timeout=10)
        response.raise_for_status()
        return response.json()

    def requests(self) -> list[dict]:
        return httpx.get(self._url("/_requests"), timeout=60).json()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


def lanternpath_server(workdir: Path, name: str, model_env: dict[str, str | None],
                       args: list[str] | None = None) -> ServerProcess:
    """A started `python -m service serve` (with `args`) with a fresh SQLite file unless
    model_env names another DATABASE_URL; None in model_env unsets.

    Every virtual player starts from 127.0.0.1, as no real crowd does: the limit on starts
    per address is off, so the benchmark measures the chapters, not the limit."""
    db = workdir / f"{name}.db"
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}", "START_LIMIT_BURST": "0"}
    server = ServerProcess(env, workdir / f"{name}.log", args=args)
    for key, value in model_env.items():
        if value is None:
            server.env.pop(key, None)
        else:
            server.env[key] = value
    return SERVER_CORES.start(server, timeout=90)


def relay_server(model: ModelProcess, workdir: Path, name: str) -> ServerProcess:
    """The bare relay (benchmarks/relay.py) on the same scripted model: the stack's floor."""
    command = [sys.executable, "-m", "benchmarks.relay", "--model", model.api_base]
    return SERVER_CORES.start(ServerProcess({}, workdir / f"{name}.log", command=command), timeout=60)


class ServerCores:
    """Where the measured servers run. By default, on every core, shared with the players'
    loop, the scripted model and the picture follower, as the operating system likes.

    `keep_one()` gives the servers started from then on a core of their own, and moves this
    process, and what it starts besides the servers, onto the other cores. The model and the
    follower stand for machines elsewhere (the model's provider, the players' browsers): kept
    off the server's core, their CPU no longer counts as what the server's own work costs its
    streams. A server's background processes, niced below it (the picture process, the
    screening worker), go to the other cores too: on a machine of its own, the server's
    process would leave them the cores it does not use.

    On those cores the players' loop, which takes the measurements, and the scripted model,
    which stands for a provider's servers, run first (a real-time priority, which the
    processes they start do not take), where the system allows it. With pictures on, the work
    beside them there doubled the loop's lag at p99 (15 to 33 ms at 50 players): a late loop
    makes every chunk it times look late, and a model late to take a request makes the
    server's time to first text look longer."""

    def __init__(self) -> None:
        self.server: set[int] | None = None
        self.players_first = False

    def keep_one(self) -> None:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            raise SystemExit("a core of the server's own needs two cores; this process has one")
        self.server = {cores[0]}
        set_cores_of_every_thread(set(cores[1:]))
        # This thread's: the players' loop runs on it.
        self.players_first = self.run_first(0)
        if not self.players_first:
            print("no real-time priority allowed: the players' loop and the model share their cores as they are",
                  flush=True)

    def run_first(self, pid: int) -> bool:
        """With a core kept for the server, the (main thread of the) process runs first on the
        other cores, if the system allows it; whether it does."""
        if self.server is None:
            return False
        try:
            os.sched_setscheduler(pid, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
        except PermissionError:
            return False
        return True

    def start(self, server: ServerProcess, timeout: float) -> ServerProcess:
        """`server.start()`, on the servers' core when there is one; the server's background
        processes, started by the time it answers, then move to the other cores."""
        if self.server is None:
            return server.start(timeout=timeout)
        others = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.server)  # this thread's, which the server's process takes
        try:
            server.start(timeout=timeout)
        finally:
            os.sched_setaffinity(0, others)
        root = psutil.Process(server.process.pid)
        for child in root.children(recursive=True):
            if child.nice() > root.nice():
                set_cores_of_every_thread(others, child.pid)
        return server

    def describe(self) -> str:
        if self.server is None:
            return "the server shares every core with the players, the model and the picture follower"
        others = sorted(os.sched_getaffinity(0))
        first = " (the players' loop and the model first)" if self.players_first else ""
        return (f"the server's process on core {min(self.server)} alone; its background processes, the players, "
                f"the model and the picture follower on core{'s' * (len(others) > 1)} {', '.join(map(str, others))}"
                f"{first}")


SERVER_CORES = ServerCores()


def set_cores_of_every_thread(cores: set[int], pid: int | None = None) -> None:
    """The cores of every thread of this process, or of process `pid` (Linux): a thread, and a
    process it starts, takes its starter's."""
    for thread in os.listdir(f"/proc/{pid or 'self'}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(int(thread), cores)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and all of its children have used so far: a
    server started with --workers is a supervisor and its worker processes."""
    try:
        processes = _tree(pid)
    except psutil.Error:
        return 0.0
    return _cpu_of(processes)


# The parts of a server's CPU (cpu_parts): its process's main thread (the event loop's), its
# other threads (the database's, the executors'), its child processes (the picture process,
# the screening worker; a --workers supervisor's workers).
CPU_PARTS = ("event loop", "other threads", "child processes")


def cpu_parts(pid: int) -> dict[str, float]:
    """cpu_seconds(pid), split into CPU_PARTS: a change in the server's CPU then says whether
    the streams' own thread pays for it. Threads that have ended no longer count (a
    process's own total does): the server's threads live as long as it does."""
    try:
        root = psutil.Process(pid)
        threads, children = root.threads(), root.children(recursive=True)
    except psutil.Error:
        return dict.fromkeys(CPU_PARTS, 0.0)
    loop = sum(t.user_time + t.system_time for t in threads if t.id == pid)  # the main thread's id is the pid
    others = sum(t.user_time + t.system_time for t in threads if t.id != pid)
    return dict(zip(CPU_PARTS, (loop, others, _cpu_of(children)), strict=True))


def _cpu_of(processes: list[psutil.Process]) -> float:
    """Their CPU time (user + system); one that has ended meanwhile counts nothing."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def stop_server(server: ServerProcess, timeout: float = 30.0) -> None:
    """SIGTERM (a graceful stop); SIGKILL if it has not exited within the timeout."""
    try:
        server.stop(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()


@dataclass
class Sample:
    at: float
    rss: int
    streams: int
    cpu: float                  # the server process, % of one core
    others: dict[str, float]    # the model process and the players' process, % of one core
    machine: float              # all cores, % of the whole machine


@dataclass
class ProcessSampler:
    """Samples the server's RSS and CPU with the number of open streams every `every` s,
    and the CPU of the other benchmark processes and of the machine (other users share it)."""

    pid: int
    open_streams: Callable[[], int]
    others: dict[str, int] = field(default_factory=dict)
    every: float = 0.25
    samples: list[Sample] = field(default_factory=list)

    async def run(self, limit: float) -> None:
        # A server started with --workers is a supervisor and its workers: all of them count.
        servers = _tree(self.pid)
        others = {name: psutil.Process(pid) for name, pid in self.others.items()}
        for process in (*servers, *others.values()):
            process.cpu_percent(None)
        psutil.cpu_percent(None)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            await asyncio.sleep(self.every)
            try:
                rss = sum(p.memory_info().rss for p in servers)
                cpu = sum(p.cpu_percent(None) for p in servers)
                other = {name: p.cpu_percent(None) for name, p in others.items()}
            except psutil.Error:
                return
            self.samples.append(Sample(time.monotonic(), rss, self.open_streams(), cpu, other,
                                       psutil.cpu_percent(None)))


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def start_profiler(pid: int, path: Path) -> subprocess.Popen | None:
    """py-spy sampling the server into a flame graph SVG (stop it with stop_profiler)."""
    try:
        # An .svg path gives a flame graph; a .txt path gives collapsed stacks to read or diff.
        form = "raw" if path.suffix == ".txt" else "flamegraph"
        # Only the thread holding the interpreter lock: where the server's CPU goes. (Without
        # it, the event loop waiting in uvloop's C code, and idle database threads, count as
        # busy: py-spy cannot tell them idle.)
        return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", "200", "--gil",
                                 "--nonblocking", "--format", form, "-o", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        print("py-spy is not installed (pip install py-spy): no profile", flush=True)
        return None


def stop_profiler(spy: subprocess.Popen | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores; {SERVER_CORES.describe()}"
