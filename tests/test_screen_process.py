"""The jobs' child-safety screen runs in a process of its own, below the server's priority:
it screens as the server's own screen does (with the operator's terms), a process that dies
fails only the texts it had (the next are screened by a new one), and it ends with the server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from service.chapters.screening import ChildSafety
from service.content.screen_terms import load_lexicon
from service.jobs.below_the_server import NICENESS
from service.jobs.screen_process import PARENT_CHECK_SECONDS, ScreenProcess

TEXTS = [("Mira lit the lantern. The trader drank whisky all night.", ()),
         ("The keeper fed the glimmerfish at dawn. Then the tide came in.", ()),
         ("The answer is photosynthesis. Mira smiled.", ("photosynthesis",))]


@pytest.fixture
def terms_file(tmp_path):
    path = tmp_path / "terms.yaml"
    path.write_text("gore:\n  - glimmerfish\n", encoding="utf-8")
    return path


def _worker(screen: ScreenProcess) -> psutil.Process:
    (pid,) = screen._pool()._processes
    return psutil.Process(pid)


async def test_the_jobs_screen_drops_what_the_servers_own_screen_drops_in_a_niced_process_of_its_own(terms_file):
    screen = ScreenProcess(terms_file)
    screen.start()
    await screen.ready()
    expected = [ChildSafety(load_lexicon(terms_file)).clean(text, answers) for text, answers in TEXTS]

    screened = await screen.clean_all(TEXTS)

    assert screened == expected
    assert [kept for kept, _ in screened] == ["Mira lit the lantern.", "Then the tide came in.", "Mira smiled."]
    worker = _worker(screen)
    assert worker.pid != os.getpid()
    assert worker.nice() >= psutil.Process().nice() + NICENESS


async def test_when_the_screening_process_dies_its_texts_fail_and_a_new_process_screens_the_next(terms_file):
    screen = ScreenProcess(terms_file)
    screen.start()
    await screen.ready()
    first = _worker(screen)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(5)

    with pytest.raises(Exception, match="terminated abruptly"):  # the job's attempt fails, and is tried again
        await screen.clean_all(TEXTS[:1])
    kept, hits = (await screen.clean_all(TEXTS[:1]))[0]

    assert kept == "Mira lit the lantern." and [hit.term for hit in hits] == ["whisky"]
    assert _worker(screen).pid != first.pid


# A server with its screening process: it prints the worker's pid, then runs until a SIGINT
# or SIGTERM stops it as uvicorn does (it ends normally), or until it is killed.
SERVER = """
import asyncio, signal
from service.jobs.screen_process import ScreenProcess

async def main():
    screen = ScreenProcess(None)
    screen.start()
    if {ready}:
        await screen.ready()
    (pid,) = screen._pool()._processes
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(pid, flush=True)
    await asyncio.wait_for(stop.wait(), 60)

asyncio.run(main())
"""


@pytest.mark.parametrize("ready", [True, False], ids=["once-ready", "while-it-starts"])
def test_when_the_server_is_killed_outright_its_screening_process_ends_too(ready):
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(ready=ready)], stdout=subprocess.PIPE, text=True)
    try:
        worker = psutil.Process(int(server.stdout.readline()))
        server.kill()
        server.wait(5)
        worker.wait(10 * PARENT_CHECK_SECONDS)  # psutil.TimeoutExpired if it waits for work forever
    finally:
        server.kill()
    assert not worker.is_running()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "service-stop"])
def test_a_stop_signalled_to_the_servers_process_group_ends_its_screening_process_quietly(sig):
    """A terminal's Ctrl-C (SIGINT) and a service manager's stop (SIGTERM) reach every process
    of the server's group: the server stops, and its screening process ends with it, with
    nothing in the log (no traceback, no leaked semaphores)."""
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(ready=True)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker = psutil.Process(int(server.stdout.readline()))
        os.killpg(server.pid, sig)
        _, log = server.communicate(timeout=30)
        worker.wait(10 * PARENT_CHECK_SECONDS)
    finally:
        server.kill()
    assert server.returncode == 0
    assert log == ""
