"""Text helpers every stage uses (sources, rendering, delivery, logs)."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Text on one line: every run of whitespace, control or format characters becomes one space,
    the ends trimmed (upstream text bound for a header, a log line or a paper's fields)."""
    text = " ".join(text.split())
    if not text.isprintable():  # rare: a control or format character left after the spaces
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text
