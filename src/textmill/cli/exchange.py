"""Moving models in and out: ARPA files for n-gram models, Hugging Face directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import TextmillError
from .common import app, fail, out

arpa_app = typer.Typer(no_args_is_help=True, help="Export and import n-gram models as ARPA files (KenLM, SRILM).")
app.add_typer(arpa_app, name="arpa")


@arpa_app.command("export")
def arpa_export(run: Annotated[Path, typer.Argument(help="run directory of an n-gram model")],
                path: Annotated[Path, typer.Argument(help="ARPA file to write")]) -> None:
    """Write an n-gram run as an ARPA file."""
    from ..exchange.arpa import export_arpa

    try:
        export_arpa(run, path)
    except TextmillError as e:
        fail(e)
    out.print(f"written: {path}")


@arpa_app.command("import")
def arpa_import(path: Annotated[Path, typer.Argument(help="ARPA file")],
                out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")],
                tokenizer: Annotated[str, typer.Option(help="auto (the tokenizer a textmill export records, else whitespace), "
                                                            "whitespace, char or word")] = "auto") -> None:
    """Make a run directory from an ARPA file (then generate with it or eval it with --data)."""
    from ..exchange.arpa import import_arpa

    try:
        import_arpa(path, out_dir, tokenizer)
    except TextmillError as e:
        fail(e)
    out.print(f"run directory: {out_dir}   next: textmill generate {out_dir}")


@app.command()
def export(run: Annotated[Path, typer.Argument(help="gpt run directory, or a Llama, Gemma 3 or GPT-2 pretrained source")],
           out_dir: Annotated[Path, typer.Argument(help="directory to write")],
           fmt: Annotated[str, typer.Option("--format", help="hf: a Hugging Face model directory (GPT-2, Llama or Gemma 3)")] = "hf",
           overwrite: Annotated[bool, typer.Option(help="replace an existing directory")] = False) -> None:
    """Export a GPT run as a Hugging Face model directory that transformers loads with the same logits."""
    from ..exchange.hf import export_hf

    try:
        if fmt != "hf":
            raise TextmillError(f"--format {fmt!r}: the one export format is hf (ARPA files: textmill arpa export)")
        export_hf(run, out_dir, overwrite=overwrite)
    except TextmillError as e:
        fail(e)
    out.print(f"written: {out_dir}   load it with transformers.AutoModelForCausalLM.from_pretrained({str(out_dir)!r})")


@app.command("import")
def import_(source: Annotated[str, typer.Argument(help="a Llama, Gemma 3 or GPT-2 pretrained source: embedded:smollm2-135m-instruct, "
                                                      "a .gguf file or a Hugging Face directory")],
            out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")]) -> None:
    """Make a textmill run directory from a pretrained model, to fine-tune (--init-from RUN) or evaluate like any run."""
    from ..exchange.hf import import_run

    try:
        import_run(source, out_dir)
    except TextmillError as e:
        fail(e)
    out.print(f"run directory: {out_dir}   next: textmill train CONFIG --init-from {out_dir}")
