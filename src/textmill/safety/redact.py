"""`textmill redact`: a file's texts with personal information masked, replaced or dropped (pii.py),
or screened by a whole safety policy (policy.py), written whole or not at all."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..data.sources import read_jsonl, read_utf8
from ..errors import ConfigError
from ..files import atomic_write_text
from .pii import Redactor
from .policy import Safety


def redact_file(src: str | Path, out: str | Path, redactor: Redactor | Safety, *, text_field: str | int = "text",
                overwrite: bool = False) -> dict[str, int]:
    """Redact a file into `out`, written whole or not at all: one text per line, or the text field of
    JSONL rows, or a column of CSV/TSV (the other fields are kept). Rows the redactor drops (`drop`, or
    refused by a `Safety` policy) are left out. Returns the counts: rows read, rows written, and what
    was found (spans per type, or the policy's counts). An empty input, in any format, is 0 rows and
    an empty output."""
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise ConfigError(f"{src} does not exist")
    if out.resolve() == src.resolve():
        raise ConfigError("--out is the input file; write the redacted copy elsewhere (the original stays as it was)")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; choose another --out or pass --overwrite")
    text = read_utf8(src)
    suffix = src.suffix.lower()
    rows_in = rows_out = 0
    if suffix == ".jsonl":
        lines = []
        for n, row in read_jsonl(src):
            if not isinstance(row.get(text_field), str):
                raise ConfigError(f"{src}:{n} has no {text_field!r} text field; name it with --text-field")
            rows_in += 1
            row[text_field] = redactor(row[text_field])
            if row[text_field] is not None:
                lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        body = "".join(lines)
        rows_out = len(lines)
    elif suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        reader = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        header, rows = (reader[0], reader[1:]) if reader else ([], [])
        if isinstance(text_field, int) or str(text_field).isdigit():
            col, rows = int(text_field), reader  # a header-less table: the column by position
        elif text_field in header or not reader:
            col = header.index(text_field) if reader else 0
        else:
            raise ConfigError(f"{src} has no column {text_field!r}; its header: {header}; name it with --text-field")
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
        if rows is not reader and header:
            writer.writerow(header)
        for row in rows:
            rows_in += 1
            if col >= len(row):
                raise ConfigError(f"{src}: a row has {len(row)} columns, fewer than column {col}")
            row[col] = redactor(row[col])
            if row[col] is not None:
                writer.writerow(row)
                rows_out += 1
        body = buf.getvalue()
    else:
        kept = []
        for line in text.split("\n")[:-1] if text.endswith("\n") or not text else text.split("\n"):
            rows_in += 1
            red = redactor(line)
            if red is not None:
                kept.append(red)
        rows_out = len(kept)
        body = "".join(k + "\n" for k in kept)
    atomic_write_text(out, body)
    return {"rows": rows_in, "written": rows_out, **redactor.counts}
