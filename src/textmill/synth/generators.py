"""Label-conditioned generators behind one interface: `fit` on the real training rows, then `sample`
any number of texts for a label, reproducibly from a seed.

A generator is named by a spec `name` or `name:argument`:
- `eda`: the EDA baseline (augment.py): edits of real sentences of the label;
- `ngram`: one Kneser-Ney n-gram model per label (words; characters for Chinese);
- `rnn`, `lstm`, `gru`, `gpt`: one language model trained on `<label=X>text` documents and sampled
  after the label's control token; `gpt:PATH` fine-tunes the run at PATH (a base pretrained on
  unlabelled text, `train.init_from`) instead of training from scratch;
- `cvae`: a conditional VAE, sampled from the prior with the label's embedding (`cvae:PATH`: from a
  conditional VAE trained before);
- `run:PATH`: a run trained before (any label-conditioned family), used as it is.
New kinds (a local Hugging Face model, an OpenAI-compatible endpoint) register a class here; the
pipeline only calls `fit` and `sample`.

Trained generators keep their run directories under the work directory, so a resumed synth run
samples from the same weights instead of training again.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..progress import Report
from ..registry import Registry
from .augment import EDA, build_thesaurus, eda_alpha

log = logging.getLogger(__name__)

Rows = Sequence[tuple[str, str]]  # (text, label)


class SynthGenerator:
    """fit(rows) once, then sample(label, n, seed) -> n texts (before filtering)."""

    name = "generator"
    takes_argument = False  # whether a spec `name:argument` means something
    argument_name = "PATH"  # what the argument is, for messages
    argument_required = False

    def __init__(self, argument: str | None, options: dict[str, Any]) -> None:
        self.argument, self.options = argument, options
        self.progress: Report = lambda what, done, total: None  # the pipeline's progress report, for a long `fit`

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        raise NotImplementedError

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the report says about this generator."""
        return {"name": self.name}


GENERATORS: Registry[type[SynthGenerator]] = Registry("generator")


def build_generator(spec: str, options: dict[str, Any] | None = None) -> SynthGenerator:
    """`gpt`, `run:runs/yelp`, ...: an unknown name is an error that lists the known ones."""
    name, _, argument = spec.partition(":")
    if name == "vae":
        raise ConfigError("generator 'vae' cannot condition on labels; use 'cvae', the label-conditioned VAE")
    if name not in GENERATORS.names():
        raise ConfigError(f"unknown generator {name!r}; choose one of: {', '.join(map(usage, GENERATORS.names()))}")
    cls = GENERATORS.get(name)
    if argument and not cls.takes_argument:
        raise ConfigError(f"generator {name!r} takes no argument (got {spec!r}); use --generator {name}")
    return cls(argument or None, dict(options or {}))


def usage(name: str) -> str:
    """How a generator is named on the command line: `eda`, `gpt[:BASE]`, `run:PATH`."""
    cls = GENERATORS.get(name)
    if not cls.takes_argument:
        return name
    return f"{name}:{cls.argument_name}" if cls.argument_required else f"{name}[:{cls.argument_name}]"


@GENERATORS.register("eda")
class EDAGenerator(SynthGenerator):
    """Each sample edits a real sentence of the label, taken in a shuffled round robin, with one of
    the four operations in turn. Options: `thesaurus` (auto | wordnet | corpus), `alpha`."""

    name = "eda"

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        texts = [t for t, _ in rows]
        self.thesaurus = build_thesaurus(self.options.get("thesaurus", "auto"), texts)
        self.alpha = float(self.options.get("alpha", eda_alpha(len(rows))))
        self.eda = EDA(self.thesaurus, self.alpha, chinese)
        self.by_label: dict[str, list[str]] = {}
        for t, label in rows:
            self.by_label.setdefault(label, []).append(t)

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        rng = random.Random(f"{seed}/{label}")
        sources = self.by_label[label]
        order = list(range(len(sources)))
        rng.shuffle(order)
        ops = EDA.OPERATIONS
        return [self.eda.augment(sources[order[i % len(order)]], ops[i % len(ops)], rng) for i in range(n)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "thesaurus": self.thesaurus.name, "alpha": self.alpha}


class ModelSampler(SynthGenerator):
    """A generator that samples a loaded run for each label (trained here, or given as `run:PATH`).

    Options: `temperature`, `top_p`, `max_new_tokens` (64), `batch_size` (64), and `prefix` (0): with
    `prefix=K`, each sample starts with the first K words (characters for Chinese) of a real text of
    its label, taken in a shuffled round robin, and the model writes the rest (always at least the
    text's last word): new sentences that keep the way the label's real sentences open."""

    def __init__(self, argument: str | None, options: dict[str, Any]) -> None:
        super().__init__(argument, options)
        self.prefix = options.get("prefix", 0)
        if isinstance(self.prefix, bool) or not isinstance(self.prefix, int) or self.prefix < 0:
            raise ConfigError(f"generator option prefix={self.prefix!r} must be a whole number of words >= 0 (0: no prefix)")

    def remember(self, rows: Rows, chinese: bool) -> None:
        """Keep the real texts of each label, the sources of `prefix` prompts."""
        self.chinese, self.sep, self.sources = chinese, "" if chinese else " ", {}
        for t, label in rows:
            self.sources.setdefault(label, []).append(t)

    def model_for(self, label: str) -> Any:
        return self.gen

    def prompts(self, label: str, n: int, seed: int) -> list[str]:
        if not self.prefix:
            return [""] * n
        rng = random.Random(f"{seed}/{label}/prefix")
        sources = list(self.sources[label])
        rng.shuffle(sources)
        out = []
        for i in range(n):
            units = list(sources[i % len(sources)]) if self.chinese else sources[i % len(sources)].split()
            out.append(self.sep.join(units[:min(self.prefix, len(units) - 1)]))
        return out

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        """n samples of `label`, in batches, each batch seeded from `seed`."""
        gen, prompts, batch = self.model_for(label), self.prompts(label, n, seed), int(self.options.get("batch_size", 64))
        out: list[str] = []
        for start in range(0, n, batch):
            chunk = prompts[start:start + batch]
            texts = gen.generate(chunk, label=label, seed=seed * 100003 + start,
                                 max_new_tokens=int(self.options.get("max_new_tokens", 64)),
                                 temperature=float(self.options.get("temperature", 1.0)), top_p=self.options.get("top_p"))
            out += [(p + self.sep + t.strip()).strip() for p, t in zip(chunk, texts)]
        return out


class TrainedGenerator(ModelSampler):
    """A textmill model trained on the real training rows, then sampled per label; with an argument
    (`gpt:PATH`), the run at PATH fine-tuned on them: its model and tokenizer, a lower learning rate,
    evaluated every 20 steps.

    Options: those of `ModelSampler`, and `overrides` (a list of `section.key=value` for the run
    config, e.g. `train.max_minutes=5`)."""

    preset: dict[str, Any] = {}
    finetune_lr = 3e-4
    takes_argument = True
    argument_name = "BASE"

    def run_config(self, rows: Rows, data: Path, chinese: bool, seed: int) -> dict[str, Any]:
        cfg = copy.deepcopy(self.preset)
        if self.argument:
            from ..rundir import read_run_config

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
        if cfg["model"]["family"] in ("gpt", "rnn"):
            _fit_stream_windows(cfg, rows, chinese)
        return cfg

    def _train(self, rows: Rows, run: Path, chinese: bool, seed: int) -> None:
        from ..train import train

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
        train(self.run_config(rows, data, chinese, seed), run, overrides=list(self.options.get("overrides", [])), overwrite=True,
              callback=show, progress=False)
        (run / "synth_done").write_text("")

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        from ..rundir import load

        self.remember(rows, chinese)
        run = workdir / "generator"
        self._train(rows, run, chinese, seed)
        self.gen = load(run)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.preset["model"]["family"], "base": self.argument, "options": self.options}


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
        from ..rundir import load

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
        from ..rundir import load

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
        return {"name": self.name, "run": self.argument}
