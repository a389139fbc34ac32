"""HTML to PDF with headless Chromium's print-to-PDF (Debian's `chromium`, scripts/install-system.sh).

Each document gets a private directory and a fresh browser profile; Chromium runs in a session of its own
so that a timeout kills it with every child process it started. At most MAX_CONCURRENT run at once: a
request waiting longer than the timeout for its turn is told the printer is busy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from services.ledger.errors import LedgerError

log = logging.getLogger(__name__)

MAX_CONCURRENT = 2
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage")  # fmt: skip
_turns = threading.BoundedSemaphore(MAX_CONCURRENT)


class PdfUnavailable(LedgerError):
    """No PDF can be made now: Chromium is missing, failed, timed out or is busy."""


def chromium_argv(binary: str, page: Path, output: Path, profile: Path) -> list[str]:
    """The command line that prints `page` to `output` with a fresh profile."""
    return [binary, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={output}", page.resolve().as_uri()]


def html_to_pdf(document: str, chromium: str = "chromium", timeout: float = 60.0) -> bytes:
    """The PDF Chromium prints of the HTML `document`; PdfUnavailable when it cannot."""
    binary = shutil.which(chromium)
    if binary is None:
        raise PdfUnavailable(f"{chromium!r} is not installed (Debian package chromium: make install)")
    if not _turns.acquire(timeout=timeout):
        raise PdfUnavailable(f"{MAX_CONCURRENT} PDFs are being printed; retry later")
    try:
        with tempfile.TemporaryDirectory(prefix="tollgate-pdf-") as work:
            page, output = Path(work) / "report.html", Path(work) / "report.pdf"
            page.write_text(document, encoding="utf-8")
            _run(chromium_argv(binary, page, output, Path(work) / "profile"), timeout)
            printed = output.read_bytes() if output.is_file() else b""
    finally:
        _turns.release()
    if not printed.startswith(b"%PDF"):
        raise PdfUnavailable("Chromium exited without writing a PDF")
    return printed


def _run(argv: list[str], timeout: float) -> None:
    """Run Chromium to its end, or kill its whole session after `timeout` seconds."""
    process = subprocess.Popen(  # noqa: S603 - argv is built here, the binary found on PATH
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        raise PdfUnavailable(f"Chromium did not print within {timeout:.0f}s") from None
    finally:
        _kill_session(process)  # helpers it left behind
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        log.warning("chromium exited with %d: %s", process.returncode, tail[0])
        raise PdfUnavailable(f"Chromium failed (exit {process.returncode}): {tail[0][:200]}")


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        process.wait(timeout=10)
