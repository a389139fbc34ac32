"""BENCHMARKS.md's one-screen summary: each stage's headline rate and its ratio to its raw baseline,
all from the one run the page reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench.report_rows import Row, _fmt

# Per stage: the label shown and the prefix of the row that is its headline (the best such row wins).
HEADLINES = (
    ("kafka", "Kafka ProducerPerformance (broker ceiling)", "ProducerPerformance acks=all"),
    ("ingest", "ingest, HTTP -> Kafka (best batch size and process count)", "HTTP ingest"),
    ("processor", "processor, one worker (drain)", "processor, one worker"),
    ("ledger", "ledger, billable -> PostgreSQL", "ledger consumer into PostgreSQL"),
    ("e2e", "end to end, sustained", "sustained through all three"),
    ("oneday", "one day, end to end, sustained", "sustained through all three"),
)


def headline(rows: Sequence[Row], prefix: str) -> Row | None:
    """The matching row with the highest value (the first row's unit), or None."""
    matching = [r for r in rows if r.metric.startswith(prefix) and r.value is not None]
    if not matching:
        return None
    unit = matching[0].unit
    return max((r for r in matching if r.unit == unit), key=lambda r: r.value or 0.0)


def render_summary(rows: Mapping[str, Sequence[Row]], statuses: Mapping[str, str]) -> list[str]:
    """The summary table's markdown lines: stage, rate, unit, raw baseline, ratio, target verdict."""
    lines = [
        "## Summary (one run)",
        "",
        "| stage | rate | unit | raw baseline | ratio | meets target |",
        "| --- | ---: | --- | --- | ---: | --- |",
    ]
    for stage, label, prefix in HEADLINES:
        if stage not in statuses:
            continue
        row = headline(rows.get(stage, ()), prefix)
        if row is None:
            lines.append(f"| {label} | {statuses[stage]} |  |  |  |  |")
            continue
        baseline = f"{row.baseline} ({_fmt(row.baseline_value)})" if row.baseline else ""
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else ""
        verdict = "" if row.meets is None else ("yes" if row.meets else "no") + f" (≥ {_fmt(row.target)})"
        if row.lower_is_better and row.meets is not None:
            verdict = verdict.replace("≥", "<")
        lines.append(f"| {label} | {_fmt(row.value, 1)} | {row.unit} | {baseline} | {ratio} | {verdict} |")
    return [*lines, ""]
