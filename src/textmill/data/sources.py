"""Read corpora into lists of documents (strings), strictly.

Formats: a whole plain-text file is one document (`text`), or each non-empty line is one (`lines`);
JSONL, CSV, TSV and Parquet take the chosen text field (a JSON list of strings is joined with
newlines, e.g. a poem's `paragraphs`). A directory reads every file inside, sorted. Every byte is
checked: binary files (NUL bytes), invalid UTF-8 (reported with the byte offset) and empty corpora
raise a `DataError` that names the file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError
from .embedded import EMBEDDED, embedded_documents

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


def _field(record: dict, field: str, where: str) -> str:
    if field not in record:
        raise DataError(f"{where}: no field {field!r}; fields here: {', '.join(map(str, record))}. Set data.text_field")
    value = record[field]
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _read_file(path: Path, fmt: str, field: str) -> list[str]:
    if fmt == "auto":
        fmt = _BY_SUFFIX.get(path.suffix.lower(), "text")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a bad file
            raise DataError(f"{path} is not a readable Parquet file: {e}") from None
        if field not in table.column_names:
            raise DataError(f"{path}: no column {field!r}; columns: {', '.join(table.column_names)}. Set data.text_field")
        return [str(v) for v in table.column(field).to_pylist() if v is not None]
    text = read_utf8(path)
    if fmt == "text":
        return [text]
    if fmt == "lines":
        return [line for line in text.split("\n") if line.strip()]
    if fmt == "jsonl":
        docs = []
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{n}: each JSONL line must be an object with a {field!r} field")
            docs.append(_field(record, field, f"{path}:{n}"))
        return docs
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",")
    if reader.fieldnames is None or field not in reader.fieldnames:
        raise DataError(f"{path}: no column {field!r}; columns: {', '.join(reader.fieldnames or [])}. Set data.text_field")
    return [row[field] for row in reader if row[field]]


def read_documents(cfg: DataConfig) -> list[str]:
    """Every non-empty document of the configured source, in a stable order."""
    if cfg.source.startswith("embedded:"):
        docs = embedded_documents(cfg.source.removeprefix("embedded:"))
    else:
        root = Path(cfg.source).expanduser()
        if not root.exists():
            hint = f"; embedded corpora: {', '.join('embedded:' + k for k in EMBEDDED)}"
            raise DataError(f"data source {cfg.source!r} does not exist (paths are relative to {Path.cwd()}){hint}")
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.is_dir() else [root]
        docs = [d for f in files for d in _read_file(f, cfg.format, cfg.text_field)]
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError(f"data source {cfg.source!r} holds no text; point data.source at a non-empty corpus")
    return docs[: cfg.max_documents] if cfg.max_documents else docs
