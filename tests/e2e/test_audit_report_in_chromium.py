"""The audit report from the running ledger, rendered in a real headless Chromium: no console errors, the
key figures present as rendered text, and a screenshot kept as the test's artefact."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from chromium_support import render, screenshot

from services.demo import story

PERIOD = {"from": "2026-10", "to": "2026-11"}


@pytest.fixture(scope="module")
def report_page(demo_run: story.DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The omnisoft October report as the ledger serves it to an auditor, saved for the browser."""
    story.invoices(demo_run)  # issued (idempotently), so the cross-check has invoices to compare
    answer = httpx.get(f"{demo_run.ledger_url}/v1/licensees/omnisoft/audit-report", params=PERIOD,
                       headers={"Authorization": f"Bearer {demo_run.tokens['auditor']}",
                                "Accept": "text/html"}, timeout=30.0)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    page = tmp_path_factory.mktemp("audit-report") / "omnisoft-2026-10.html"
    page.write_bytes(answer.content)
    return page


def visible_text(dom: str) -> str:
    """The DOM's text: tags dropped, whitespace collapsed."""
    without_style = re.sub(r"<style>.*?</style>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", without_style).split())


def test_the_report_renders_without_a_single_console_message(report_page: Path) -> None:
    assert render(report_page, report_page.parent).console == []


def test_the_key_figures_appear_as_rendered_text(report_page: Path) -> None:
    shown = visible_text(render(report_page, report_page.parent).dom)
    for figure in ("Audit evidence report: Omnisoft Corporation (omnisoft)", "USD 150,775.00",
                   "gov-intel-agency", "gov-statistics-office", "omni-shadow", "3,240", "81,000",
                   "Alerts raised", "government.unnotified", "rate.breach", "matches",
                   # Unbilled exposure: the enterprise list price against the deal's invoice, and the gap
                   "Unbilled exposure", "USD 167,253.66", "Unbilled exposure: USD 16,478.66."):  # fmt: skip
        assert figure in shown, figure


def test_the_charts_are_inline_svg_and_nothing_is_fetched(report_page: Path) -> None:
    dom = render(report_page, report_page.parent).dom
    assert dom.count("<svg") >= 4  # calls, records, and one timeline per government org
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", dom)


def test_a_screenshot_of_the_report_is_kept(report_page: Path) -> None:
    png = screenshot(report_page, report_page.parent, report_page.with_suffix(".png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
