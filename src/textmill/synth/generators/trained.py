"""Generators that sample a textmill run for each label: one trained here on the real rows (`ngram`,
`rnn`, `lstm`, `gru`, `gpt[:BASE]`, `cvae`), or one trained before (`run:PATH`).

Trained generators keep their run directories under the work directory, so a resumed synth run
samples from the same weights instead of training again.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from pathlib import Path
from typing import Any

from pydantic import Field

from ...errors import ConfigError
from ...loading import load
from ...rundir import read_run_config
from ...training import train
from ..rows import Rows
from .base import GENERATORS, SamplingOptions, SynthGenerator

log = logging.getLogger(__name__)


class SamplerOptions(SamplingOptions):
    prefix: int = Field(0, ge=0, description="start each sample with the first K words (characters for Chinese) of "
                                             "a real text of its label, and let the model write the rest (0: no prefix)")


class TrainedOptions(SamplerOptions):
    overrides: list[str] = Field(default_factory=list, description="`section.key=value` changes to the generator's run "
                                                                   "config, e.g. train.max_minutes=5")


class ModelSampler(SynthGenerator):
    """A generator that samples a loaded run for each label (trained here, or given as `run:PATH`).

    With `prefix=K`, each sample starts with the first K words (characters for Chinese) of a real text
    of its label, taken in a shuffled round robin, and the model writes the rest (always at least the
    text's last word): new sentences that keep the way the label's real sentences open."""

    samples = True
    Options = SamplerOptions

    def remember(self, rows: Rows, chinese: bool) -> None:
        """Keep the real texts of each label, the sources of `prefix` prompts."""
        self.chinese, self.sep, self.sources = chinese, "" if chinese else " ", {}
        for t, label in rows:
            self.sources.setdefault(label, []).append(t)

    def model_for(self, label: str) -> Any:
        return self.gen

    def prompts(self, label: str, n: int, seed: int) -> list[str]:
        prefix = self.options.prefix
        if not prefix:
            return [""] * n
        rng = random.Random(f"{seed}/{label}/prefix")
        sources = list(self.sources[label])
        rng.shuffle(sources)
        out = []
        for i in range(n):
            units = list(sources[i % len(sources)]) if self.chinese else sources[i % len(sources)].split()
            out.append(self.sep.join(units[:min(prefix, len(units) - 1)]))
        return out

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        """n samples of `label`, in batches, each batch seeded from `seed`."""
        o = self.options
        gen, prompts = self.model_for(label), self.prompts(label, n, seed)
        out: list[str] = []
        for start in range(0, n, o.batch_size):
            chunk = prompts[start:start + o.batch_size]
            texts = gen.generate(chunk, label=label, seed=seed * 100003 + start, max_new_tokens=o.max_new_tokens,
                                 temperature=o.temperature, top_p=o.top_p)
            out += [(p + self.sep + t.strip()).strip() for p, t in zip(chunk, texts)]
        return out


class TrainedGenerator(ModelSampler):
    """A textmill model trained on the real training rows, then sampled per label; with an argument
    (`gpt:PATH`), the run at PATH fine-tuned on them: its model and tokenizer, a lower learning rate,
    evaluated every 20 steps."""

    Options = TrainedOptions
    preset: dict[str, Any] = {}
    finetune_lr = 3e-4
    takes_argument = True
    argument_name = "BASE"
    dp: dict[str, Any] | None = None
    canaries: dict[str, Any] | None = None
    run: Path | None = None  # the trained run, once fitted

    def train_privately(self, dp: dict[str, Any] | None, canaries: dict[str, Any] | None) -> None:
        self.dp, self.canaries = dp, canaries

    def run_config(self, rows: Rows, data: Path, chinese: bool, seed: int) -> dict[str, Any]:
        cfg = copy.deepcopy(self.preset)
        if self.argument:
            base = read_run_config(Path(self.argument)).model
            if base.family != cfg["model"]["family"]:
                raise ConfigError(f"generator {self.name}:{self.argument}: that run is a {base.family!r} model, and "
                                  f"{self.name!r} fine-tunes a {cfg['model']['family']!r} one; pick the generator of its family")
            cfg["model"] = base.model_dump(mode="json")
            # a pretrained model fits a few hundred rows in tens of steps, then overfits: evaluate often
            cfg["train"].update(init_from=str(Path(self.argument).resolve()), lr=self.finetune_lr, min_lr=self.finetune_lr / 10,
                                eval_every=20, patience=3)
        else:
            # prefix_space: one token per English word, wherever it stands ("reachunlikable": without it,
            # a third of the samples glued a sentence-initial word form to the word before)
            cfg["tokenizer"] = {"kind": "char"} if chinese else {"kind": "word", "vocab_size": 20000, "prefix_space": True}
        cfg["data"] = {"source": str(data), "format": "jsonl", "text_field": "text", "label_field": "label",
                       "val_fraction": 0.1, "split_seed": seed}
        cfg.setdefault("train", {})["seed"] = seed
        if self.dp:
            cfg["train"]["dp"] = dict(self.dp)
        if self.canaries:
            cfg["data"]["canaries"] = dict(self.canaries)
        if cfg["model"]["family"] in ("gpt", "rnn"):
            _fit_stream_windows(cfg, rows, chinese)
        return cfg

    def _train(self, rows: Rows, run: Path, chinese: bool, seed: int) -> None:
        if (run / "model.safetensors").is_file() and (run / "synth_done").is_file():
            log.info("reusing the generator trained before in %s", run)
            return
        run.mkdir(parents=True, exist_ok=True)
        data = run.parent / f"{run.name}.jsonl"
        data.write_text("".join(json.dumps({"text": t, "label": label}, ensure_ascii=False) + "\n" for t, label in rows),
                        encoding="utf-8")
        what = f"training the {self.name} generator"

        def show(event: dict[str, Any]) -> None:
            if event["kind"] == "step":
                self.progress(f"{what} (loss {event['loss']:.2f})", event["step"], event["max_steps"])

        self.progress(what, 0, None)
        train(self.run_config(rows, data, chinese, seed), run, overrides=list(self.options.overrides), overwrite=True,
              callback=show, progress=False)
        (run / "synth_done").write_text("")

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        self.remember(rows, chinese)
        run = workdir / "generator"
        self._train(rows, run, chinese, seed)
        self.gen, self.run = load(run), run

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "family": self.preset["model"]["family"], "base": self.argument}


def _fit_stream_windows(cfg: dict[str, Any], rows: Rows, chinese: bool) -> None:
    """A language model's validation split must hold a couple of context windows: with few rows,
    hold out a larger share (at most 30%), then shorten the context."""
    per_row = sum(len(t) if chinese else 1.2 * len(t.split()) for t, _ in rows) / max(len(rows), 1) + 2  # + <bos>, <label=X>
    total = per_row * len(rows)
    context = cfg["model"]["context"]
    share = min(0.3, max(0.1, 3 * (context + 1) / total))
    cfg["data"]["val_fraction"] = share
    if share * total < 3 * (context + 1):
        cfg["model"]["context"] = max(8, int(share * total / 3) - 1)


def _preset(family: str, train: dict[str, Any] | None = None, **model: Any) -> dict[str, Any]:
    """A small model for a few hundred to a few thousand sentences: 5 minutes at most, early stopping."""
    return {"model": {"family": family, "context": 64, **model},
            "train": {"max_steps": 3000, "max_minutes": 5, "batch_size": 32, "lr": 2e-3, "min_lr": 1e-4, "warmup_steps": 100,
                      "weight_decay": 0.0, "eval_every": 100, "eval_batches": 10, "patience": 4, **(train or {})}}


@GENERATORS.register("gpt")
class GPTGenerator(TrainedGenerator):
    name = "gpt"
    preset = _preset("gpt", {"lr": 1e-3, "weight_decay": 0.1}, n_layer=3, n_head=4, n_embd=128, dropout=0.2)


def _recurrent(cell: str) -> type[TrainedGenerator]:
    class RecurrentGenerator(TrainedGenerator):
        name = cell
        preset = _preset("rnn", cell=cell, n_layer=1, n_embd=128, hidden=256, dropout=0.3, tie_weights=True)

    RecurrentGenerator.__name__ = f"{cell.upper()}Generator"
    return RecurrentGenerator


for _cell in ("rnn", "lstm", "gru"):
    GENERATORS.register(_cell)(_recurrent(_cell))


@GENERATORS.register("cvae")
class CVAEGenerator(TrainedGenerator):
    name = "cvae"
    preset = _preset("cvae", {"patience": None}, cell="lstm", n_embd=128, hidden=256, latent=16, label_dim=16, dropout=0.2,
                     word_dropout=0.3, kl_schedule="linear", kl_warmup_steps=1000, free_bits=0.5)


@GENERATORS.register("ngram")
class NGramGenerator(TrainedGenerator):
    """One n-gram model per label: a label token would condition only the first n - 1 words."""

    name = "ngram"
    takes_argument = False
    preset = {"model": {"family": "ngram", "order": 3, "smoothing": "kneser_ney"}}

    def run_config(self, rows: Rows, data: Path, chinese: bool, seed: int) -> dict[str, Any]:
        cfg = super().run_config(rows, data, chinese, seed)
        if chinese:
            cfg["model"]["order"] = 4
        del cfg["train"]
        return cfg

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        self.remember(rows, chinese)
        self.gens = {}
        for i, label in enumerate(sorted({x for _, x in rows})):
            run = workdir / f"generator_{i}"
            self._train([(t, x) for t, x in rows if x == label], run, chinese, seed)
            self.gens[label] = load(run)

    def model_for(self, label: str) -> Any:
        return self.gens[label]


@GENERATORS.register("run")
class RunGenerator(ModelSampler):
    """A label-conditioned run trained before: `run:PATH`."""

    name = "run"
    takes_argument = True
    argument_required = True

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        self.remember(rows, chinese)
        if not self.argument:
            raise ConfigError("generator 'run' needs the run directory: --generator run:PATH")
        self.gen = load(self.argument)
        known = set(getattr(self.gen, "labels", []) or [])
        if not known:
            raise ConfigError(f"{self.argument} cannot condition on labels (it was trained without them); train a "
                              "label-conditioned model (data.label_field with gpt/rnn, or cvae) or pick another generator")
        missing = sorted({x for _, x in rows} - known)
        if missing:
            raise ConfigError(f"{self.argument} knows labels {sorted(known)}, not {missing}; train it on this data's labels")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "run": self.argument}
