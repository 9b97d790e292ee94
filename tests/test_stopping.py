"""A server stopped as a terminal stops it (Ctrl-C) or as a service manager does (SIGTERM)
gets the signal in every process of its group, its picture and screening processes too: it
stops, they end with it, and its log shows the shutdown and nothing else (no traceback)."""
from __future__ import annotations

import signal

import httpx
import psutil
import pytest

from tests.support.server_process import ServerProcess


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "service-stop"])
def test_a_stop_signalled_to_the_servers_group_ends_every_process_of_it_quietly(
        sig, scripted_model, database_url, tmp_path):
    log = tmp_path / "server.log"
    server = ServerProcess({"LLM_MODEL": "openai/scripted", "LLM_API_BASE": scripted_model.url, "LLM_API_KEY": "x",
                            "IMAGE_MODEL": "openai/scripted-images", "DATABASE_URL": database_url}, log).start()
    try:
        assert httpx.get(server.base_url + "/", timeout=30).status_code == 200
        children = psutil.Process(server.process.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        assert any("picture-worker" in command for command in commands)  # the picture process
        assert any("spawn_main" in command for command in commands)      # the screening process
        started = log.read_text()
        code = server.stop(sig, timeout=30)
    finally:
        if server.process is not None:
            server.kill()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    assert code == 0  # a stop that was asked for, not a crash
    shutdown = log.read_text()[len(started):]
    assert "Application shutdown complete" in shutdown
    assert "Traceback" not in shutdown and "KeyboardInterrupt" not in shutdown and "leaked" not in shutdown
