"""Lanternpath as a real separate process (`python -m service serve`), for tests that stop,
kill and restart it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_child(argv: list[str], ready_url: str, log_path: Path, env: dict[str, str] | None = None,
                timeout: float = 60.0) -> subprocess.Popen:
    """Start a child process and wait until `ready_url` answers 2xx."""
    log = open(log_path, "ab")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=1).is_success:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{argv[2]} did not start: {log_path.read_text()[-2000:]}")


class ServerProcess:
    """`python -m service serve` (with `args`, e.g. ["--workers", "2"]), or another server
    `command` that takes --host and --port."""

    def __init__(self, env: dict[str, str], log_path: Path, args: list[str] | None = None,
                 command: list[str] | None = None):
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.port = free_port()
        self.command = command or [sys.executable, "-m", "service", "serve", *(args or [])]
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        argv = [*self.command, "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = start_child(argv, self.base_url + "/", self.log_path, self.env, timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 60.0) -> ServerProcess:
        """A new server process on this one's port, database and log (this one has stopped)."""
        again = ServerProcess({}, self.log_path, command=self.command)
        again.env, again.port = self.env, self.port
        return again.start(timeout)
