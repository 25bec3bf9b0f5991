"""Content creation: `textmill summarize` and `textmill transfer`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..errors import DataError, TextmillError
from .common import app, err, fail, out


def _documents(path: Path, field: str, reference: Optional[str]) -> tuple[list[str], list[str] | None]:
    """A text file is one document; a table (JSONL, CSV, TSV, Parquet) one per row, in `field`."""
    from ..data.sources import field_text, read_records, read_utf8, table_format

    if not path.is_file():
        raise DataError(f"{path} is not a file")
    if table_format(path, "auto") == "text":
        if reference:
            raise DataError(f"--references names a field; {path} is a plain text file (give a JSONL, CSV, TSV or Parquet file)")
        return [read_utf8(path)], None
    rows = read_records(path, "auto", [field] + ([reference] if reference else []))
    return [field_text(r[field]) for r in rows], [field_text(r[reference]) for r in rows] if reference else None


@app.command()
def summarize(inputs: Annotated[list[Path], typer.Argument(help="documents: a text file is one document; a JSONL, CSV, TSV "
                                                                  "or Parquet file holds one per row (--field)")],
              model: Annotated[Optional[str], typer.Option(help="extractive (default: the scorer fitted on BBC news), a "
                                                               "scorer saved by --save (.json), or a pretrained source or "
                                                               "run that writes the summary, e.g. embedded:smollm2-135m-instruct")] = None,
              ratio: Annotated[Optional[float], typer.Option(help="summary length as a share of the document's words "
                                                               "(default: the scorer's, learned from its references)")] = None,
              sentences: Annotated[Optional[int], typer.Option(help="summary length in sentences instead")] = None,
              field: Annotated[str, typer.Option(help="tables: the field of the document")] = "article",
              references: Annotated[Optional[str], typer.Option(
                  help="tables: the field of a reference summary: print ROUGE against it, beside lead-3")] = None,
              fit: Annotated[Optional[Path], typer.Option(help="fit an extractive scorer on this table of documents "
                                                               "(--field) and summaries (--summary-field) first")] = None,
              summary_field: Annotated[str, typer.Option(help="--fit: the field of the reference summary")] = "summary",
              features: Annotated[str, typer.Option(help="--fit: tfidf, or pretrained (adds a pretrained model's "
                                                         "features; slower)")] = "tfidf",
              save: Annotated[Optional[Path], typer.Option(help="--fit: write the fitted scorer here (.json)")] = None,
              quantize: Annotated[Optional[str], typer.Option(help="a model that writes: int4 or bf16 weights")] = None,
              out_path: Annotated[Optional[Path], typer.Option("--out", help="write JSONL: document, summary "
                                                                             "(and reference)")] = None,
              overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False) -> None:
    """Summarize documents: `textmill summarize article.txt`, `textmill summarize news.jsonl --references
    summary` (ROUGE against the references, beside lead-3), `textmill summarize news.jsonl --model
    embedded:smollm2-135m-instruct --sentences 3`, `textmill summarize --fit train.jsonl --save mine.json
    test.jsonl`."""
    from ..content.summarize import ExtractiveSummarizer, summarizer
    from ..evaluation.metrics import rouge
    from ..evaluation.pairs import lead
    from ..files import atomic_write_text

    try:
        if out_path and out_path.exists() and not overwrite:
            raise TextmillError(f"{out_path} exists; pass --overwrite to replace it or choose another --out")
        if save and not fit:
            raise TextmillError("--save writes a scorer that --fit fits; pass --fit PAIRS too")
        if fit:
            if model:
                raise TextmillError("--fit fits an extractive scorer; leave out --model")
            docs, refs = _documents(fit, field, summary_field)
            chosen: Any = ExtractiveSummarizer(features).fit(list(zip(docs, refs or [])))  # type: ignore[arg-type]
            err.print(f"fitted on {len(docs)} documents; summaries hold {chosen.ratio:.0%} of a document's words")
            if save:
                chosen.save(save)
                err.print(f"scorer written to {save}")
        else:
            chosen = summarizer(model, **({"quantize": quantize} if quantize else {}))
        documents, wanted = [], []
        for path in inputs:
            docs, refs = _documents(path, field, references)
            documents += docs
            wanted += refs or []
        if not documents:
            raise DataError(f"{', '.join(map(str, inputs))} hold no documents")
        summaries = chosen.summarize(documents, ratio=ratio, sentences=sentences)
    except TextmillError as e:
        fail(e)
    if out_path:
        rows = [{"document": d, "summary": s, **({"reference": r} if references else {})}
                for d, s, r in zip(documents, summaries, wanted or [None] * len(documents))]
        atomic_write_text(out_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        err.print(f"{len(rows)} summaries written to {out_path}")
    elif not references:
        for summary in summaries:
            print(summary)
            print("-" * 40)
    if references:
        table = Table(title=f"ROUGE F1 of {len(documents)} summaries against {references!r}")
        for column in ("system", "ROUGE-1", "ROUGE-2", "ROUGE-L"):
            table.add_column(column, justify="left" if column == "system" else "right")
        for name, outputs in ((model or "extractive", summaries), ("lead-3", [lead(d) for d in documents])):
            scores = rouge(outputs, wanted)
            table.add_row(name, *(f"{scores[k]:.1f}" for k in ("rouge1", "rouge2", "rougeL")))
        out.print(table)


@app.command()
def transfer(model: Annotated[str, typer.Argument(help="a cvae run, or a pretrained source with --data "
                                                    "(embedded:smollm2-135m-instruct, embedded:gemma3-270m, ...)")],
             texts: Annotated[list[str], typer.Argument(help="sentences to rewrite")],
             to: Annotated[str, typer.Option(help="the label to rewrite them with")],
             data: Annotated[Optional[str], typer.Option(help="a pretrained source: labelled rows to learn each label's "
                                                              "markers from (CSV, TSV, JSONL, Parquet, label<TAB>text "
                                                              "lines, or embedded:chinese_reviews)")] = None,
             text_col: Annotated[str, typer.Option(help="--data: column or field of the text")] = "text",
             label_col: Annotated[str, typer.Option(help="--data: column or field of the label")] = "label",
             salience: Annotated[float, typer.Option(help="--data: how much likelier in one label than in the others "
                                                          "an n-gram must be to count as its marker")] = 15.0,
             confidence: Annotated[float, typer.Option(help="--data: rewrite markers until the classifier gives the new "
                                                            "label this probability")] = 0.8,
             num_beams: Annotated[int, typer.Option(help="a cvae: > 1 for beam search (default: greedy)")] = 1,
             max_new_tokens: Annotated[int, typer.Option(help="a cvae: the longest output")] = 60,
             as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False) -> None:
    """Style transfer. A pretrained model rewrites only the words that carry the old label (learned from
    --data): `textmill transfer embedded:smollm2-135m-instruct --data reviews.csv --to positive "the food
    was cold"`. A cvae run encodes each sentence, changes its label and decodes it: `textmill transfer RUN
    --to positive "the food was cold"`."""
    from ..content import MarkerTransfer
    from ..decoding import LatentGenerator
    from ..loading import load
    from ..models.hf import is_pretrained_source
    from ..synth.rows import load_rows

    try:
        if is_pretrained_source(model):
            if not data:
                raise TextmillError(f"{model} learns which words carry each label from labelled examples: pass --data "
                                    "FILE (--text-col, --label-col), e.g. the rows you would give `textmill synth`")
            col = lambda c: int(c) if c.isdigit() else c  # noqa: E731
            rows = load_rows(data, "auto", col(text_col), col(label_col))
            rewriter = MarkerTransfer(model, salience=salience, confidence=confidence).fit(*zip(*rows))
            results = rewriter.transfer(list(texts), to)
        else:
            if data:
                raise TextmillError(f"--data is for a pretrained source; the cvae run {model} learned its labels in training")
            gen = load(model)
            if not isinstance(gen, LatentGenerator):
                raise TextmillError(f"{model} is a {gen.info.get('family')} run; style transfer needs a cvae run or a "
                                    "pretrained source with --data")
            strategy = "beam" if num_beams > 1 else "greedy"
            results = gen.transfer(list(texts), to, strategy=strategy, num_beams=num_beams, max_new_tokens=max_new_tokens)
    except TextmillError as e:
        fail(e)
    for text, new in zip(texts, results):
        print(json.dumps({"text": text, "label": to, "transferred": new}, ensure_ascii=False) if as_json else f"{text}\n=> {new}")
