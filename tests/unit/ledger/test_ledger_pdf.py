"""The PDF path's pure parts and its refusals: content negotiation, Chromium's command line, 503 reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.errors import SettingsError
from services.ledger.adapters import pdf
from services.ledger.adapters.http.api_reports import wants_json, wants_pdf
from services.ledger.settings import LedgerSettings

ENV = {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_DATABASE_URL": "postgresql://u:pw@h/db",
       "TOLLGATE_TOKENS_FILE": __file__}  # fmt: skip


@pytest.mark.parametrize(
    ("accept", "is_pdf", "is_json"),
    [("application/pdf", True, False), ("application/pdf;q=1, */*;q=0.1", True, False),
     ("text/html,application/pdf", False, False), ("application/json", False, True), ("", False, False)],
)  # fmt: skip
def test_pdf_is_sent_only_when_asked_for_and_html_is_not(accept: str, is_pdf: bool, is_json: bool) -> None:
    assert (wants_pdf(accept), wants_json(accept)) == (is_pdf, is_json)


def test_chromium_prints_the_page_with_a_fresh_profile_and_no_header_or_footer(tmp_path: Path) -> None:
    argv = pdf.chromium_argv("/usr/bin/chromium", tmp_path / "r.html", tmp_path / "r.pdf", tmp_path / "p")
    assert argv[0] == "/usr/bin/chromium" and argv[-1] == (tmp_path / "r.html").as_uri()
    assert {"--headless", "--no-pdf-header-footer", f"--print-to-pdf={tmp_path / 'r.pdf'}",
            f"--user-data-dir={tmp_path / 'p'}"} <= set(argv)  # fmt: skip


def test_a_missing_chromium_is_a_clear_refusal() -> None:
    with pytest.raises(pdf.PdfUnavailable, match="not installed"):
        pdf.html_to_pdf("<p>x</p>", chromium="no-such-chromium-binary")


def test_a_browser_that_does_not_finish_is_killed_at_the_timeout(tmp_path: Path) -> None:
    slow = tmp_path / "slow-chromium"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    with pytest.raises(pdf.PdfUnavailable, match="did not print within 1s"):
        pdf.html_to_pdf("<p>x</p>", chromium=str(slow), timeout=1.0)


def test_a_browser_that_fails_is_named_with_its_exit_code(tmp_path: Path) -> None:
    broken = tmp_path / "broken-chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(pdf.PdfUnavailable, match=r"exit 3\): cannot open display"):
        pdf.html_to_pdf("<p>x</p>", chromium=str(broken))


def test_pdf_and_alert_settings_are_read_and_checked() -> None:
    settings = LedgerSettings.from_env({**ENV, "TOLLGATE_LEDGER_PDF_TIMEOUT_SECONDS": "5",
                                        "TOLLGATE_LEDGER_CONSUME_ALERTS": "false"})  # fmt: skip
    assert (settings.pdf_timeout_seconds, settings.consume_alerts) == (5.0, False)
    assert settings.chromium == "chromium"
    with pytest.raises(SettingsError, match="TOLLGATE_LEDGER_CONSUME_ALERTS"):
        LedgerSettings.from_env({**ENV, "TOLLGATE_LEDGER_CONSUME_ALERTS": "maybe"})
    with pytest.raises(SettingsError, match="TOLLGATE_LEDGER_ALERTS_TOPIC"):
        LedgerSettings.from_env({**ENV, "TOLLGATE_LEDGER_ALERTS_TOPIC": "bad topic"})
