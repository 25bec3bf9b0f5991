"""Precision and recall of PII detection on a labelled set written as marked text: `⟦TYPE|value⟧`
marks each span that must be found; everything else must not be."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .pii import TYPES, Span, detect

MARK = re.compile(r"⟦([A-Z_]+)\|(.*?)⟧")


def read_marked(line: str) -> tuple[str, list[tuple[str, int, int]]]:
    """The plain text of a marked line and its gold spans (type, start, end)."""
    text, spans, at = [], [], 0
    length = 0
    for m in MARK.finditer(line):
        text.append(line[at:m.start()])
        length += m.start() - at
        spans.append((m.group(1), length, length + len(m.group(2))))
        text.append(m.group(2))
        length += len(m.group(2))
        at = m.end()
    text.append(line[at:])
    return "".join(text), spans


def score(lines: Iterable[str], types: Iterable[str] = TYPES,
          detector: Callable[[str, Iterable[str]], list[Span]] = detect) -> dict[str, dict[str, float]]:
    """Per type: true and false positives, misses, precision and recall (exact span matches) of
    `detector` (textmill's `detect`, or another tool's spans under textmill's type names)."""
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in types}
    errors: list[tuple[str, str, Span | tuple[str, int, int]]] = []
    for line in lines:
        text, gold = read_marked(line)
        found = {(s.type, s.start, s.end): s for s in detector(text, counts)}
        for g in gold:
            if g in found:
                counts[g[0]]["tp"] += 1
            elif g[0] in counts:
                counts[g[0]]["fn"] += 1
                errors.append(("missed", text, g))
        for key, s in found.items():
            if key not in gold:
                counts[s.type]["fp"] += 1
                errors.append(("false", text, s))
    out: dict[str, dict[str, float]] = {}
    for t, c in counts.items():
        out[t] = {**c, "precision": c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0,
                  "recall": c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0}
    out["_errors"] = errors  # type: ignore[assignment]
    return out
