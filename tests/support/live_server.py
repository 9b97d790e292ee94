"""A real uvicorn server on 127.0.0.1 in a background thread: the only honest way to see
that a response streams (httpx's ASGI transport buffers whole responses).
"""
from __future__ import annotations

import socket
import threading
import time

import uvicorn


class LiveServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, lifespan: str = "on", loop: str = "auto"):
        self.app, self.host, self.port, self.lifespan, self.loop = app, host, port, lifespan, loop
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0):
        # Bind here so the port is known before the thread starts (port 0 = any free port).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        # As `python -m service serve` runs it: the app alone decides which proxies it believes.
        config = uvicorn.Config(self.app, log_level="warning", lifespan=self.lifespan, timeout_graceful_shutdown=2,
                                proxy_headers=False, loop=self.loop)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"live-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=3)
        if self._thread.is_alive():  # streams left open by a test must not hold the suite up
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
