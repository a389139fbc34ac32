"""Plain-text tables for the terminal: the story `make run` prints."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A titled table with aligned columns; numbers right-aligned."""
    cells = [[_text(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(row) for row in cells] or ["(none)"]
    return "\n".join([f"== {title} ==", line(list(headers)), rule, *body, ""])


def money(minor: int, currency: str) -> str:
    """Integer minor units as a decimal amount with its currency, e.g. `USD 1,234.56`."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(int(minor)), 100)
    return f"{currency} {sign}{whole:,}.{cents:02d}"


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
