"""Read corpora into lists of documents (strings), strictly.

Formats: a whole plain-text file is one document (`text`), or each non-empty line is one (`lines`);
JSONL, CSV, TSV and Parquet take the chosen text field (a JSON list of strings is joined with
newlines, e.g. a poem's `paragraphs`). A directory reads every file inside, sorted. Labelled data
comes from a `label_field`, or from a mapping label: file. Every byte is
checked: binary files (NUL bytes), invalid UTF-8 (reported with the byte offset) and empty corpora
raise a `DataError` that names the file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..errors import DataError
from .embedded import EMBEDDED, chinese_reviews_labelled, embedded_documents

log = logging.getLogger(__name__)

_BY_SUFFIX = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


def read_utf8(path: Path) -> str:
    """The text of `path`, or a DataError naming the file and the offending byte offset."""
    data = path.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path} looks binary (NUL byte at offset {nul}); pass a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "convert it first, e.g. `iconv -f GBK -t UTF-8`"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def read_lines(path: Path) -> list[str]:
    """Every line of a UTF-8 file, empty ones included (parallel files must stay aligned)."""
    text = read_utf8(path)
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def table_format(path: Path, fmt: str) -> str:
    return _BY_SUFFIX.get(path.suffix.lower(), "text") if fmt == "auto" else fmt


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line of a JSONL file; a line that is not a JSON
    object is a DataError naming `path:line`."""
    rows = []
    for n, line in enumerate(read_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{n}: each JSONL line must be an object with named fields")
        rows.append((n, record))
    return rows


def read_records(path: Path, fmt: str, fields: list[str | int] = ()) -> list[dict[str | int, Any]]:
    """The rows of a JSONL, CSV, TSV or Parquet file as dicts, checked to hold `fields`.

    Integer fields name 0-based columns of a CSV/TSV file without a header row."""
    fmt = table_format(path, fmt)
    if fmt not in ("jsonl", "csv", "tsv", "parquet"):
        raise DataError(f"{path}: format {fmt!r} has no fields; use jsonl, csv, tsv or parquet (set data.format)")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a bad file
            raise DataError(f"{path} is not a readable Parquet file: {e}") from None
    elif fmt == "jsonl":
        rows = [record for _, record in read_jsonl(path)]
    else:
        delimiter = "\t" if fmt == "tsv" else ","
        text = io.StringIO(read_utf8(path), newline="")  # csv reads quoted newlines and lone carriage returns itself
        try:
            if any(isinstance(f, int) for f in fields):  # no header: columns by position
                rows = [dict(enumerate(r)) for r in csv.reader(text, delimiter=delimiter) if r]
            else:
                rows = list(csv.DictReader(text, delimiter=delimiter))
        except csv.Error as e:
            raise DataError(f"{path} is not readable {fmt.upper()} ({e}); check its quoting, or set data.format") from None
    for f in fields:
        missing = next((i for i, r in enumerate(rows) if f not in r), None)
        if missing is not None:
            have = ", ".join(map(str, rows[missing])) or "none"
            kind = "column" if fmt in ("csv", "tsv", "parquet") else "field"
            raise DataError(f"{path}: row {missing + 1} has no {kind} {f!r}; {kind}s: {have}. "
                            "Set data.text_field (or data.source_field / data.target_field)")
    return rows


def field_text(value: Any) -> str:
    """A field as text: a list of strings (a poem's lines) is joined with newlines."""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _read_file(path: Path, fmt: str, field: str | int) -> list[str]:
    fmt = table_format(path, fmt)
    if fmt == "text":
        return [read_utf8(path)]
    if fmt == "lines":
        return [line for line in read_lines(path) if line.strip()]
    return [field_text(r[field]) for r in read_records(path, fmt, [field])]


def read_documents(cfg: DataConfig) -> list[str]:
    """Every non-empty document of the configured source, in a stable order (the texts alone, for a
    labelled source)."""
    if isinstance(cfg.source, dict) or cfg.label_field is not None:
        return [text for text, _ in read_labelled(cfg)]
    if cfg.source.startswith("embedded:"):
        docs = embedded_documents(cfg.source.removeprefix("embedded:"))
    else:
        docs = [d for f in _files(cfg.source) for d in _read_file(f, cfg.format, cfg.text_field)]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError(f"data source {cfg.source!r} holds no text; point data.source at a non-empty corpus")
    return docs[: cfg.max_documents] if cfg.max_documents else docs


def _files(source: str) -> list[Path]:
    root = Path(source).expanduser()
    if not root.exists():
        hint = f"; embedded corpora: {', '.join('embedded:' + k for k in EMBEDDED)}"
        raise DataError(f"data source {source!r} does not exist (paths are relative to {Path.cwd()}){hint}")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.is_dir() else [root]


def read_labelled(cfg: DataConfig) -> list[tuple[str, str]]:
    """Every (text, label) of a labelled source: a mapping label: file (each file read as `format`
    says), a table whose `label_field` holds the labels, or embedded:chinese_reviews (pos/neg).
    Rows with an empty text or label are skipped and counted in the log."""
    if isinstance(cfg.source, dict):
        rows = [(d, str(label)) for label, path in cfg.source.items()
                for f in _files(path) for d in _read_file(f, cfg.format, cfg.text_field)]
    elif cfg.source == "embedded:chinese_reviews":
        rows = chinese_reviews_labelled()
    elif cfg.label_field is None:
        raise DataError(f"{cfg.source!r} has no labels: set data.label_field to the column that holds them, "
                        "or give data.source as a mapping label: file")
    elif cfg.source.startswith("embedded:"):
        raise DataError(f"{cfg.source} has no labels; embedded:chinese_reviews has (pos/neg)")
    else:
        rows = [(field_text(r[cfg.text_field]), field_text(r[cfg.label_field]).strip())
                for f in _files(cfg.source) for r in read_records(f, cfg.format, [cfg.text_field, cfg.label_field])]
    kept = [(t, label) for t, label in rows if t.strip() and label]
    if len(kept) < len(rows):
        log.warning("skipped %d of %d rows with an empty text or label", len(rows) - len(kept), len(rows))
    if not kept:
        raise DataError(f"data source {cfg.source!r} holds no labelled text")
    if cfg.max_documents and len(kept) > cfg.max_documents:  # a seeded sample keeps every label represented
        chosen = sorted(random.Random(cfg.split_seed).sample(range(len(kept)), cfg.max_documents))
        kept = [kept[i] for i in chosen]
    return kept
