"""Plain-text tables and percentages, as every command prints them."""

from __future__ import annotations

from collections.abc import Sequence


def table(rows: Sequence[Sequence[object]], left: int | None = None) -> list[str]:
    """Aligned columns, two spaces apart, trailing spaces trimmed; the first row is the header.

    Args:
        rows: The header, then one row each; cells are printed with ``str``.
        left: How many leading columns are left-aligned (names); the rest are right-aligned
            (numbers). None: every column left-aligned.
    """
    text = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(text[0]))]
    n_left = len(widths) if left is None else left
    return [
        "  ".join(
            c.ljust(w) if k < n_left else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in text
    ]


def pct(v: float | None) -> str:
    """A fraction as points with two decimals (``0.4567`` -> ``45.67``); ``-`` for None."""
    return "-" if v is None else f"{v * 100:.2f}"
