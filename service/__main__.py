"""`python -m service serve|migrate|jobs`: the operator's commands."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import service  # noqa: F401  (offline switches for litellm)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description="Lanternpath")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the game server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes on this host (more than one needs REDIS_URL and PostgreSQL)")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("jobs", help="list pending, running and failed jobs")
    commands.add_parser("picture-worker")  # started by `serve` itself (service/picture_worker.py)
    evaluate = commands.add_parser("evaluate", help="play adventures against the configured model and report quality")
    evaluate.add_argument("--adventures", type=int, default=1)
    args = parser.parse_args(argv)
    _quiet_logging()
    if args.command == "picture-worker":
        from service.picture_worker import main as draw_pictures

        draw_pictures()
        return
    from service.config import Settings

    settings = Settings()
    if args.command == "serve":
        import uvicorn

        from service.content.loader import ContentError
        from service.runtime import create_app

        try:
            app = create_app(settings)
        except ContentError as exc:
            raise SystemExit(f"Cannot start: broken content file: {exc}") from None
        # proxy_headers=False: uvicorn would believe X-Forwarded-For from 127.0.0.1; the app
        # believes only the proxies named in FORWARDED_ALLOW_IPS (service/web/app.py).
        options = dict(host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5,
                       proxy_headers=False)
        # Once it has shut down, uvicorn raises a SIGTERM again with the handler it found. With
        # this one the process then exits through Python, not at once: the screening pool is
        # ended on the way and its semaphores released (jobs/screen_process.py). A stop that
        # was asked for is a clean exit (0), as service managers expect of one.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        if args.workers == 1:
            uvicorn.run(app, **options)
            return
        _check_workers(settings, args.workers)
        from service.store.db import migrate

        migrate(settings.database_url)  # once, before the workers start (each finds it done)
        # Each worker process builds the app anew from the same environment.
        uvicorn.run("service.runtime:create_app", factory=True, workers=args.workers, **options)
    elif args.command == "migrate":
        from service.store.db import migrate

        migrate(settings.database_url)
        print("The database schema is up to date.")
    elif args.command == "jobs":
        asyncio.run(_list_jobs(settings))
    elif args.command == "evaluate":
        from service.evaluation import run

        print(run(args.adventures))


def _exit_cleanly(_signum: int, _frame) -> None:
    sys.exit(0)


def _quiet_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Per-call lines from these libraries would drown the service's own log.
    for noisy in ("LiteLLM", "litellm", "alembic.runtime.plugins", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _check_workers(settings, workers: int) -> None:
    """Several processes share chapters through Redis and the store through PostgreSQL."""
    if workers < 1:
        raise SystemExit("Cannot start: --workers must be 1 or more.")
    if not settings.redis_url:
        raise SystemExit("Cannot start: --workers above 1 needs REDIS_URL (the processes share the events of "
                         "chapters being written through Redis).")
    if not settings.database_url.startswith("postgresql"):
        raise SystemExit("Cannot start: --workers above 1 needs DATABASE_URL on PostgreSQL (postgresql+asyncpg://...); "
                         "SQLite serves one process.")


async def _list_jobs(settings) -> None:
    from service.store.db import create_engine, session_factory
    from service.store.jobs import JobQueue

    engine = create_engine(settings.database_url)
    jobs = await JobQueue(session_factory(engine)).listing()
    await engine.dispose()
    print(f"{'id':>5}  {'kind':<11} {'state':<8} {'attempts':>8}  chapter  last error")
    for job in jobs:
        print(f"{job.id:>5}  {job.kind:<11} {job.state:<8} {job.attempts:>8}  "
              f"{job.adventure_id}/{job.chapter_number}  {job.last_error or ''}")
    if not jobs:
        print("No pending, running or failed jobs.")


if __name__ == "__main__":
    main()
