"""`tollgate demo`: the story on the local stack (what `make run` runs)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.demo import story, tell
from services.demo.scenario import demo_calls
from services.stack import LocalStack

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# In-process loggers whose INFO lines (one per HTTP request, Kafka connection chatter, stack steps) would
# bury the story's tables; the services' own processes already log to files in the demo directory.
QUIET_LOGGERS = ("httpx", "httpcore", "kafka", "services")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `demo` sub-command."""
    parser = subparsers.add_parser("demo", help="run the demo scenario end to end on the local stack")
    parser.add_argument("--once", action="store_true", help="exit after printing (for scripts)")
    parser.add_argument("--keep-stack", action="store_true", help="leave the stack running on exit")
    parser.set_defaults(func=_demo)


class _Progress:
    """One status line on stderr while the replay runs: sent, rate, alerts so far."""

    def __init__(self, run: story.DemoRun) -> None:
        self.run, self.started, self.last = run, time.monotonic(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and done < total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        alerts = story.alerts_so_far(self.run)
        line = f"\r  replaying: {done:,}/{total:,} events sent, {rate:,.0f} ev/s, {alerts} alerts so far"
        sys.stderr.write(line)
        sys.stderr.flush()


@contextmanager
def routed_logs(path: Path, loggers: tuple[str, ...] = QUIET_LOGGERS) -> Iterator[Path]:
    """While open, `loggers` write to the file `path`; only their warnings and errors reach the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file, to_terminal = logging.FileHandler(path, encoding="utf-8"), logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.WARNING)
    for handler in (to_file, to_terminal):
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(to_file)
        logger.addHandler(to_terminal)
        # At most INFO: `-v` keeps its debug lines, in the file.
        logger.setLevel(min(logging.INFO, logger.getEffectiveLevel()))
        logger.propagate = False
    try:
        yield path
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(to_file)
            logger.removeHandler(to_terminal)
            logger.setLevel(level)
            logger.propagate = propagate
        to_file.close()


def _demo(args: argparse.Namespace) -> int:
    stack = LocalStack()
    workdir = Path(stack.config.stack_dir) / "demo"
    with routed_logs(workdir / "clients.log"):
        return _story(args, stack, workdir)


def _story(args: argparse.Namespace, stack: LocalStack, workdir: Path) -> int:
    print("Starting the local stack (Kafka, PostgreSQL, Prometheus, Alertmanager)...", flush=True)
    info = stack.up()
    run = story.start(info, workdir)
    try:
        agreements = story.load_demo_agreements(run)
        print(f"Loaded {len(agreements)} agreements; replaying the scenario through HTTP ingest:", flush=True)
        accepted = story.replay(run, _Progress(run))
        sys.stderr.write("\n")
        story.wait_until_settled(run, len(demo_calls()))
        print(f"{accepted:,} events accepted, processed and stored.\n")
        tell_story(run)
        print(_urls(run))
        if not args.once:
            print("Running until Ctrl-C.", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        run.stop()
        if not args.keep_stack:
            stack.down()
    return 0


def tell_story(run: story.DemoRun) -> None:
    """Print the story's tables: alerts, usage, each licensee group's roll-up, invoices, unbilled
    exposure, apps without a use case, government access."""
    reports = {a.licensee_id: story.usage_report(run, a.licensee_id) for a in run.agreements}
    print(tell.alerts_table(story.alerts(run)))
    print(tell.usage_table(story.accounts(run), reports, story.DEMO_MONTH))
    for group in story.groups(run):
        print(tell.group_table(run.agreements, reports[group.licensee_id], story.DEMO_MONTH))
    print(tell.invoices_table(story.invoices(run)))
    exposures = [story.exposure(run, a.licensee_id) for a in story.accounts(run)]
    print(tell.exposure_table(exposures, story.DEMO_MONTH))
    print(tell.apps_without_use_case_table("omnisoft", reports["omnisoft"]))
    print(tell.government_table("omnisoft", reports["omnisoft"]))


def _write_tokens(run: story.DemoRun) -> Path:
    # Tokens go to an owner-only file, never to the terminal or a log.
    path = run.launcher.workdir / "demo-tokens.txt"
    path.touch(mode=0o600)
    path.write_text("".join(f"{role}={token}\n" for role, token in run.tokens.items()))
    return path


def _urls(run: story.DemoRun) -> str:
    return "\n".join([
        "== Where to look ==",
        f"Prometheus     {run.stack.prometheus_url}/alerts",
        f"Alertmanager   {run.stack.alertmanager_url}/#/alerts",
        f"Finance API    {run.ledger_url}/v1/licensees/omnisoft/invoices/{story.DEMO_MONTH}",
        f"Demo tokens    {_write_tokens(run)}  (finance, auditor, ingest; Authorization: Bearer ...)",
        f"Ingest API     {run.services['ingest'].url}/v1/events",
        f"Logs           {run.launcher.workdir}/*.log  (ingest, processor, ledger; this CLI's: clients.log)",
        "== Audit reports (HTML; Authorization: Bearer <auditor token>) ==",
        *(f"{a.licensee_id:<14} {story.audit_report_url(run, a.licensee_id)}" for a in run.agreements),
        "",
    ])
