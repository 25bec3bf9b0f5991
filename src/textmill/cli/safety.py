"""Responsible generation: redact, audit, and the --safety policies of generate and serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import TextmillError
from .common import app, fail, load_safety, out, setup_logging


@app.command()
def redact(data: Annotated[Path, typer.Argument(help="one text per line, or JSONL / CSV / TSV with a text field")],
           out_path: Annotated[Path, typer.Option("--out", help="where the redacted copy goes (written whole or not at all)")],
           action: Annotated[str, typer.Option(help="mask (<PHONE>), pseudonym (a consistent fake), hash, or drop the row")] = "mask",
           types: Annotated[Optional[list[str]], typer.Option("--type", help="only these types (repeatable); default: all")] = None,
           text_field: Annotated[str, typer.Option(help="JSONL/CSV/TSV: the field or column holding the text")] = "text",
           secret: Annotated[str, typer.Option(envvar="TEXTMILL_REDACT_SECRET",
                                               help="key of pseudonyms and hashes: the same value gets the same replacement")] = "textmill",
           safety: Annotated[Optional[str], typer.Option(
               help="apply a safety policy instead ('default' or a file): content masked, refused rows left out, "
                    "personal information as the policy says")] = None,
           overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False) -> None:
    """Find and redact personal information (emails, phones, cards, Chinese IDs, SSNs, IPs, URLs, IBANs,
    dates of birth, names) in English and Chinese text; with --safety, also abuse, hate, sexual content,
    self-harm, violence and personal attacks."""
    from ..safety import Redactor, redact_file

    try:
        if safety is not None and (types or action != "mask"):
            raise TextmillError("--safety sets what happens to personal information (its `pii` and `pii_types`); "
                                "drop --action and --type, or drop --safety")
        redactor = load_safety(safety) if safety is not None else Redactor(action, types, secret)
        counts = redact_file(data, out_path, redactor, text_field=text_field, overwrite=overwrite)
    except TextmillError as e:
        fail(e)
    found = {k: v for k, v in counts.items() if k not in ("rows", "written")}
    out.print(f"{counts['rows']} rows read, {counts['written']} written to {out_path}; found: "
              + (", ".join(f"{v} {k}" for k, v in sorted(found.items())) or "nothing"))


@app.command()
def audit(run: Annotated[Path, typer.Argument(help="run directory of a language model (gpt, rnn, ngram, pretrained fine-tune)")],
          candidates: Annotated[int, typer.Option(help="random secrets each canary is ranked among")] = 2000,
          members: Annotated[int, typer.Option(help="training and held-out texts (each) for membership inference")] = 1000,
          samples: Annotated[int, typer.Option(help="samples drawn to look for copied training text")] = 200,
          max_new_tokens: Annotated[int, typer.Option(help="tokens per sample")] = 64,
          seed: Annotated[int, typer.Option()] = 0,
          as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Memorization audit: canary exposure (runs trained with data.canaries), loss-threshold membership
    inference (AUC) and extraction (the longest training text the samples reproduce). Saved as audit.json."""
    from ..evaluation.audit import AuditOptions
    from ..evaluation.audit import audit as run_audit

    setup_logging(False)
    try:
        rep = run_audit(run, AuditOptions(candidates, members, samples, max_new_tokens, seed))
    except TextmillError as e:
        fail(e)
    if as_json:
        print(json.dumps(rep, ensure_ascii=False, indent=1))
        return
    if "canaries" in rep:
        table = Table("secret", "label", "repeats", "rank", "exposure (fit)", "exposure (sampled)", "leaked", "extracted",
                      title=f"canaries (max exposure {rep['canaries'][0]['max_exposure']} bits)")
        for c in rep["canaries"]:
            table.add_row(c["secret"], c["label"] or "", str(c["repeats"]), f"{c['rank']} / {c['of']}",
                          f"{c['exposure']:.2f}", f"{c['exposure_sampled']:.2f}", "yes" if c["leaked"] else "no",
                          "yes" if c["extracted"] else "no")
        out.print(table)
    m = rep["membership"]
    out.print(f"membership inference (loss threshold): AUC {m['auc']:.3f} (0.5 is chance), TPR at 1% FPR "
              f"{m['tpr_at_1pct_fpr']:.3f}; loss per token {m['member_loss']:.3f} on {m['members']} training texts, "
              f"{m['non_member_loss']:.3f} on {m['non_members']} held-out")
    if "extraction" in rep:
        x = rep["extraction"]
        out.print(f"extraction: {x['share_reproducing']:.1%} of {x['samples']} samples share {x['leak_len']}+ tokens in a "
                  f"row with a training text; longest {x['max_longest']}, median {x['median_longest']:g}")
        for item in x["longest"][:3]:
            out.print(f"  {item['tokens']} tokens: {escape(item['text'][:120])}")
    out.print(f"written to {run / 'audit.json'}")
