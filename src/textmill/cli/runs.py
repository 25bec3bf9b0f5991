"""Commands on models and runs: train, generate, transfer, eval, compare, info, quickstart."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..decoding.options import GenerationOptions
from ..errors import TextmillError
from .common import IS_MAIN, SetOpt, app, err, fail, load_safety, out, safety_summary, setup_logging, unescape
from .options import model_options


@app.command()
def train(config: Annotated[Path, typer.Argument(help="run config YAML, e.g. configs/gpt/shakespeare_char.yaml")],
          out_dir: Annotated[Optional[Path], typer.Option("--out", help="run directory (default runs/<config name>)")] = None,
          set_: SetOpt = None,
          init_from: Annotated[Optional[str], typer.Option(
              "--init-from", help="fine-tune: start from this run's (or pretrained source's, e.g. "
                                  "embedded:smollm2-135m-instruct) weights and tokenizer (train.init_from)")] = None,
          resume: Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")] = False,
          overwrite: Annotated[bool, typer.Option(help="replace an existing run in --out")] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Train a model; writes a run directory (weights, tokenizer, config, metrics, TensorBoard events)."""
    from ..config import load_config
    from ..training import train as run_training

    setup_logging(verbose)
    try:
        cfg = load_config(config, set_)
        if init_from is not None:
            cfg.train.init_from = str(init_from)
        run_dir = out_dir or Path("runs") / config.stem
        res = run_training(cfg, run_dir, resume=resume, overwrite=overwrite)
    except TextmillError as e:
        fail(e)
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


GENERATE_FLAGS = {"num_return_sequences": ["--num-return-sequences", "-n"], "bad_words": ["--bad-word"],
                  "stop": ["--stop"], "seed": ["--seed"]}
GENERATE_HELP = {"bad_words": "never generate this string (repeatable)", "stop": "end at this string, excluded (repeatable)",
                 "label": "write text with this label (label-conditioned models, grammars)",
                 "chat": "instruct models: the prompt is a user message; print the reply",
                 "num_return_sequences": "outputs per prompt (grammars: sentences to sample)"}


@app.command()
@model_options(GenerationOptions, names=GENERATE_FLAGS, help=GENERATE_HELP)
def generate(run: Annotated[str, typer.Argument(help="run directory, grammar file (.yaml), pretrained model "
                                                       "(embedded:smollm2-135m-instruct, a .gguf file, a Hugging Face directory), "
                                                       "or a served model: openai:MODEL@http://host:port/v1")],
             options: dict[str, Any],
             prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="repeat for a batch")] = None,
             prompts_file: Annotated[Optional[Path], typer.Option(help="one prompt per line")] = None,
             greedy: Annotated[bool, typer.Option(help="greedy decoding: the same as --strategy greedy")] = False,
             stream: Annotated[bool, typer.Option(help="print tokens as they are generated")] = False,
             as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
             plot_attention: Annotated[Optional[Path], typer.Option(
                 help="encoder-decoder runs: draw the first output's attention over its source (png, pdf, svg)")] = None,
             safety: Annotated[Optional[str], typer.Option(
                 help="screen prompts and outputs: 'default' or a policy file (YAML/JSON; see docs/safety.md)")] = None,
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
    between two sentences), or sample a grammar: `textmill generate grammar.yaml -n 100 --seed 1 --out data.jsonl`.
    The decoding options are `GenerationOptions`' fields (docs/decoding.md)."""
    from ..data import read_utf8
    from ..loading import load

    if Path(run).suffix in (".yaml", ".yml"):
        return _generate_from_grammar(Path(run), options["num_return_sequences"], options["seed"], options["label"], unique,
                                      enumerate_all, out_path, overwrite)
    try:
        prompts = list(prompt or [])
        if prompts_file:
            prompts += [line for line in read_utf8(prompts_file).split("\n") if line.strip()]
        prompts = [unescape(p) for p in prompts] or [""]
        if greedy:
            options["strategy"] = "greedy"
        options["stop"] = [unescape(x) for x in options["stop"]]
        policy = load_safety(safety)
        gen = load(run, quantize=quantize, compile=compile)
        if interpolate:
            return _interpolate(gen, interpolate, steps, options)
        if policy is not None:
            options["safety"] = policy
        if stream:
            for p in prompts:
                sys.stdout.write(p if gen.continues_prompt and not options["chat"] else f"{p}\n=> ")
                for piece in gen.stream(p, **options):
                    sys.stdout.write(piece)
                    sys.stdout.flush()
                sys.stdout.write("\n")
            safety_summary(policy)
            return
        results = gen.generate(prompts, **options)
        if plot_attention:
            first = results[0][0] if isinstance(results[0], list) else results[0]
            _plot_attention(gen, prompts[0], first, plot_attention)
    except TextmillError as e:
        fail(e)
    for p, r in zip(prompts, results):
        for text in (r if isinstance(r, list) else [r]):
            if as_json:
                print(json.dumps({"prompt": p, "text": text}, ensure_ascii=False))
            else:
                print(p + text if gen.continues_prompt and not options["chat"] else f"{p}\n=> {text}")
                print("-" * 40)
    if plot_attention:
        err.print(f"attention of the first output written to {plot_attention}")
    safety_summary(policy)


def _interpolate(gen: Any, ends: tuple[str, str], steps: int, options: dict[str, Any]) -> None:
    from ..decoding import LatentGenerator

    if not isinstance(gen, LatentGenerator):
        raise TextmillError("--interpolate needs a run with a latent space (family vae or cvae)")
    options = {k: v for k, v in options.items() if k != "num_return_sequences"}
    options["strategy"] = options["strategy"] or "greedy"
    for i, text in enumerate(gen.interpolate(*map(unescape, ends), steps=steps, **options)):
        print(f"{i / (steps - 1):.2f}  {text}")


def _plot_attention(gen: Any, source: str, output: str, path: Path) -> None:
    from ..decoding import Seq2SeqGenerator
    from ..evaluation.plots import plot_attention

    if not isinstance(gen, Seq2SeqGenerator):
        raise TextmillError("--plot-attention needs an encoder-decoder run (family seq2seq or transformer)")
    plot_attention(gen.attention(source, output), path, title=gen.info.get("run_dir"))


def _generate_from_grammar(path: Path, n: int, seed: Optional[int], label: Optional[str], unique: bool,
                           enumerate_all: bool, out_path: Optional[Path], overwrite: bool) -> None:
    from ..files import atomic_write_text
    from ..models.template import TemplateGrammar

    try:
        if out_path and out_path.exists() and not overwrite:
            raise TextmillError(f"{out_path} exists; pass --overwrite to replace it or choose another --out")
        grammar = TemplateGrammar.from_file(path)
        samples = grammar.enumerate(label) if enumerate_all else grammar.generate(n, seed=seed, label=label, unique=unique)
    except TextmillError as e:
        fail(e)
    lines = [json.dumps(s.to_dict(), ensure_ascii=False) for s in samples]
    if out_path:
        atomic_write_text(out_path, "".join(line + "\n" for line in lines))
        out.print(f"written: {len(lines)} sentences to {out_path}")
    else:
        print("\n".join(lines))


@app.command("eval")
def eval_(run: Annotated[Path, typer.Argument(help="run directory")],
          data: Annotated[Optional[str], typer.Option(help="data to score (default: the run's validation split)")] = None,
          target: Annotated[Optional[str], typer.Option(help="paired-task runs: the target side of parallel files")] = None,
          text_field: Annotated[Optional[str], typer.Option(help="field or column of the text (default: as trained)")] = None,
          data_format: Annotated[Optional[str], typer.Option("--format", help="default: as trained, or by extension")] = None,
          samples: Annotated[int, typer.Option(help="language models: samples to draw for diversity metrics (0: none)")] = 100,
          max_new_tokens: Annotated[Optional[int], typer.Option(
              help="default: 100 (samples), model.context (encoder-decoder outputs), half of it up to 256 (chat fine-tunes)")] = None,
          num_beams: Annotated[int, typer.Option(help="paired-task runs: beam size (1: greedy)")] = 5,
          batch_size: Annotated[int, typer.Option()] = 32,
          limit: Annotated[Optional[int], typer.Option(help="score only the first N documents or pairs")] = None,
          seed: Annotated[int, typer.Option()] = 0,
          predictions: Annotated[Optional[Path], typer.Option(help="outputs JSONL (default RUN/predictions.jsonl)")] = None,
          quantize: Annotated[Optional[str], typer.Option(help="gpt runs and pretrained models: score with int4 or bf16 weights")] = None,
          out_path: Annotated[Optional[Path], typer.Option("--out", help="JSON path (default RUN/eval.json)")] = None) -> None:
    """Language models: perplexity and bits per character on a corpus; distinct-n, self-BLEU and
    lengths of samples. Encoder-decoder models, and gpt runs fine-tuned on a paired task as chats: BLEU,
    chrF, ROUGE-1/2/L, exact match and distinct-n of their outputs against the references, and the
    references' perplexity."""
    from ..evaluation import evaluate

    try:
        res = evaluate(run, data, target=target, text_field=text_field, data_format=data_format, samples=samples,
                       max_new_tokens=max_new_tokens, num_beams=num_beams, batch_size=batch_size, limit=limit,
                       seed=seed, out=out_path, predictions=predictions, quantize=quantize)
    except TextmillError as e:
        fail(e)
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
    from ..evaluation import compare as run_compare

    setup_logging(False)
    try:
        rows = run_compare(configs, minutes, out_dir, data=data, overrides=set_)
    except TextmillError as e:
        fail(e)
    table = Table(title=f"leaderboard: {minutes:g} minutes each")
    for col in ("model", "family", "params", "steps", "val bpc", "val loss", "tokens/s", "sample"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['parameters'] / 1e6:.2f}M", str(r["steps"] or "-"), f"{r['val_bpc']:.3f}",
                      f"{r['val_loss']:.3f}", f"{r['tokens_per_sec']:,.0f}" if r["tokens_per_sec"] else "-",
                      " ".join(r["sample"].split())[:50])
    out.print(table)
    out.print(f"written: {out_dir / 'leaderboard.json'} and leaderboard.md")


@app.command()
def info(run: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """What a run directory holds: family, size, data, training progress and best validation loss."""
    from ..loading import load
    from ..models import count_parameters
    from ..rundir import find_last, read_run_config, read_trainer_state
    from ..training.privacy import read_privacy

    try:
        gen = load(run)
        cfg = read_run_config(run) if (run / "train.yaml").is_file() else None
        last = find_last(run)
        state = read_trainer_state(last) if last else None
    except TextmillError as e:
        fail(e)
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
    from ..config import validate_config
    from ..loading import load
    from ..training import train as run_training

    setup_logging(False)
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
        fail(e)
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
    from ..loading import load

    question = "Write one sentence about the sea."
    out.print(f"\nA pretrained model, no training: textmill generate embedded:smollm2-135m-instruct --chat -p {question!r}")
    try:
        gen = load("embedded:smollm2-135m-instruct")
    except TextmillError as e:
        out.print(f"(skipped: {e})", highlight=False, markup=False)
        return
    out.print(gen.chat([{"role": "user", "content": question}], strategy="greedy", max_new_tokens=60), highlight=False,
              markup=False)
