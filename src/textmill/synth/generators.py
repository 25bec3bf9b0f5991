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
- `run:PATH`: a run trained before (any label-conditioned family), used as it is;
- `prompt`, `prompt:SOURCE`: no training: a pretrained model (SmolLM2-Instruct by default) writes new
  rows of a label from a few-shot prompt of real ones;
- `pretrained`, `pretrained:SOURCE`: that model fine-tuned (LoRA) on the labelled rows, as `gpt:BASE`.
- `mix:A+B[+...]`: several of these at once, each writing its share of every chunk of samples.
New kinds (an OpenAI-compatible endpoint) register a class here; the pipeline only calls `fit` and
`sample`.

Trained generators keep their run directories under the work directory, so a resumed synth run
samples from the same weights instead of training again.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..progress import Report
from ..registry import Registry
from .augment import EDA, build_thesaurus, eda_alpha
from .filters import Candidate

log = logging.getLogger(__name__)

Rows = Sequence[tuple[str, str]]  # (text, label)
DEFAULT_PROMPT_SOURCE = "embedded:smollm2-135m-instruct"  # the pretrained generators' default model
PER_PROMPT = 4  # replies sampled from each few-shot prompt: 1.4x the rows a second of 1, as many pass the filters


class SynthGenerator:
    """fit(rows) once, then sample(label, n, seed) -> n texts (before filtering)."""

    name = "generator"
    takes_argument = False  # whether a spec `name:argument` means something
    argument_name = "PATH"  # what the argument is, for messages
    argument_required = False
    samples = False  # whether it samples a model (options temperature and top_p), which synth's tune can choose

    def __init__(self, argument: str | None, options: dict[str, Any]) -> None:
        self.argument, self.options = argument, options
        self.progress: Report = lambda what, done, total: None  # the pipeline's progress report, for a long `fit`

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        raise NotImplementedError

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        raise NotImplementedError

    def candidates(self, label: str, n: int, seed: int) -> list[Candidate]:
        """`sample` as the filters' candidates (a mix also says which of its generators wrote each)."""
        return [Candidate(t, label) for t in self.sample(label, n, seed)]

    def describe(self) -> dict[str, Any]:
        """What the report says about this generator."""
        return {"name": self.name}

    def trained_runs(self) -> dict[str, Path]:
        """The runs it trained on the rows, by generator, which the report audits for memorization."""
        run = getattr(self, "run", None)
        return {self.name: run} if run is not None else {}

    def train_privately(self, dp: dict[str, Any] | None, canaries: dict[str, Any] | None) -> None:
        """Train with DP-SGD (`train.dp`) and/or planted canaries (`data.canaries`): only generators that
        train a model on the rows can."""
        if dp or canaries:
            raise ConfigError(f"dp_epsilon and canaries apply to generators trained on the rows (gpt, lstm, gru, rnn, "
                              f"pretrained); the {self.name!r} generator trains no model on them"
                              + (" (its prompts show real rows to the model, which DP cannot cover)" if "prompt" in self.name
                                 else ""))


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

    samples = True

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
    dp: dict[str, Any] | None = None
    canaries: dict[str, Any] | None = None
    run: Path | None = None  # the trained run, once fitted

    def train_privately(self, dp: dict[str, Any] | None, canaries: dict[str, Any] | None) -> None:
        self.dp, self.canaries = dp, canaries

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
        if self.dp:
            cfg["train"]["dp"] = dict(self.dp)
        if self.canaries:
            cfg["data"]["canaries"] = dict(self.canaries)
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
        self.gen, self.run = load(run), run

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.preset["model"]["family"], "base": self.argument, "options": self.options}


def check_described(descriptions: dict[str, str], labels: set[str]) -> None:
    """The generator option `descriptions` may describe only labels the data has."""
    unknown = sorted(set(descriptions) - labels)
    if unknown:
        raise ConfigError(f"descriptions name labels the data does not have: {unknown}; its labels: {sorted(labels)}")


def sample_fast(model: Any, options: dict[str, Any]) -> None:
    """The pretrained generators sample in batches: bf16 weights and compiled blocks unless the
    options `quantize` and `compile` say otherwise (models/inference.py). Blocks compile on textmill's
    own GPT only, so by default a model on the transformers engine (Qwen2, say) gets bf16 weights alone;
    asking it to compile is the error that says so."""
    from ..models import GPT
    from ..models.inference import optimize

    optimize(model, options.get("quantize", "bf16"), bool(options.get("compile", isinstance(model, GPT))))


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


@GENERATORS.register("pretrained")
class PretrainedGenerator(GPTGenerator):
    """LAMBADA (Anaby-Tavor et al. 2020) on a pretrained language model: SOURCE (default
    SmolLM2-135M-Instruct; `embedded:gemma3-270m` for Chinese; any Llama, Gemma 3 or GPT-2 source
    textmill's GPT imports) becomes a textmill gpt
    run, its LoRA adapters (rank 16, bf16 autocast) are fine-tuned on the `<label=X> text` rows with
    a context of 128, and it is sampled after each label's token with bf16 weights and compiled blocks.

    Options: those of `TrainedGenerator`, `quantize` (bf16) and `compile` (True) for sampling, and
    `descriptions` ({label: "positive movie reviews"}): the words the model knows each label by. A
    label's token starts at the pretrained rows of its name, and LoRA keeps them, so a label named
    `1` starts from the digit; its description gives it the words instead."""

    name = "pretrained"
    argument_name = "SOURCE"

    def __init__(self, argument: str | None, options: dict[str, Any]) -> None:
        super().__init__(argument, options)
        self.source = argument or DEFAULT_PROMPT_SOURCE
        self.names = {str(k): " ".join(str(v).split()) for k, v in (options.get("descriptions") or {}).items()}
        bad = [v for v in self.names.values() if not v or ">" in v]
        if bad or len(set(self.names.values())) < len(self.names):
            raise ConfigError(f"generator option descriptions {self.names}: each label needs its own non-empty description "
                              f"without '>' (it names the label's control token){f'; not {bad}' if bad else ''}")

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        from ..models.hf import import_run

        check_described(self.names, {label for _, label in rows})
        rows = [(t, self.names.get(label, label)) for t, label in rows]  # the model learns each label by its words
        base = workdir / "base"
        if not (base / "model.safetensors").is_file():
            self.progress(f"importing {self.source}", 0, None)
            if base.exists():
                shutil.rmtree(base)
            import_run(self.source, base)
        self.argument = str(base)  # the run that TrainedGenerator fine-tunes, as for gpt:BASE
        super().fit(rows, workdir, chinese, seed)
        sample_fast(self.gen.model, self.options)

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        return super().sample(self.names.get(label, label), n, seed)

    def run_config(self, rows: Rows, data: Path, chinese: bool, seed: int) -> dict[str, Any]:
        cfg = super().run_config(rows, data, chinese, seed)
        cfg["model"]["context"] = min(cfg["model"]["context"], 128)
        cfg["train"].update(lora={"rank": 16, "alpha": 32}, precision="bf16", batch_size=16, lr=1e-3, min_lr=1e-4,
                            warmup_steps=10, weight_decay=0.0, eval_batches=5)
        return cfg

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "lora": {"rank": 16, "alpha": 32}, "descriptions": self.names,
                "options": {k: v for k, v in self.options.items() if k != "descriptions"}}


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


# "6. ", "6) ", Chinese "6、" / "6，" / "6," (not "3,000"), bullets, "Text:", "Example 2:"
LIST_MARK = re.compile(r"^(?:\d{1,2}(?:[.)]\s+|[\u3001\uff0c\uff0e]\s*|,(?!\d)\s*)|[-*\u2022]\s+|text\s*:\s*|"
                       r"example\s*\d*\s*:\s*)", re.IGNORECASE)
QUOTES = ('""', "''", "\u201c\u201d", "\u300c\u300d")  # pairs that may wrap a whole reply


@GENERATORS.register("prompt")
class PromptGenerator(SynthGenerator):
    """No training: a pretrained model writes new rows from few-shot prompts holding `shots` real texts
    of the label, drawn afresh for every prompt (LLM few-shot augmentation, as in Yoo et al. 2021's
    GPT3Mix, on a small local model). An instruct model (one with a chat template) continues a
    numbered list of the label's texts in its reply; a base model continues a list of `Label: X /
    Text: ...` entries. The label's description, where given, says what the label means.
    `prompt` runs SmolLM2-135M-Instruct; `prompt:SOURCE` any pretrained source or decoder run, or a
    model behind an OpenAI-compatible server (`prompt:openai:MODEL@http://host:port/v1`).

    Options: `shots` (5), `per_prompt` (4: replies sampled from each prompt, which is read once for
    them), `descriptions` ({label: "positive movie reviews"}), `temperature` (0.9) and `top_p` (0.95;
    chosen by reading samples: T 1.0 without top-p wrote noticeably noisier rows), `max_new_tokens`
    (default: 1.5 x the longest real text, in tokens), `batch_size` (32 replies), `quantize` (bf16)
    and `compile` (True for textmill's GPT, the engine of Llama, Gemma 3 and GPT-2 sources): the fast batch settings
    of models/inference.py."""

    name = "prompt"
    samples = True
    takes_argument = True
    argument_name = "SOURCE"

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        from ..generate.remote import is_remote
        from ..models import GPT
        from ..models.base import DECODER
        from ..models.hf import HFCausalLM
        from ..rundir import load

        self.shots, self.per_prompt = self.options.get("shots", 5), self.options.get("per_prompt", PER_PROMPT)
        for name, value in (("shots", self.shots), ("per_prompt", self.per_prompt)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"generator option {name}={value!r} must be a whole number >= 1")
        self.descriptions = dict(self.options.get("descriptions") or {})
        self.by_label: dict[str, list[str]] = {}
        for t, label in rows:
            self.by_label.setdefault(label, []).append(t)
        check_described(self.descriptions, set(self.by_label))
        for label, texts in sorted(self.by_label.items()):
            if len(texts) < self.shots:
                log.warning("label %r has %d examples, fewer than shots=%d: its prompts show all of them",
                            label, len(texts), self.shots)
        source = self.argument or DEFAULT_PROMPT_SOURCE
        self.progress(f"loading {source}", 0, None)
        self.gen = load(source)
        self.remote = is_remote(source)
        if not self.remote and getattr(getattr(self.gen, "model", None), "kind", None) != DECODER:
            raise ConfigError(f"generator prompt:{source}: a prompt needs a model that continues text (a pretrained "
                              "language model or a gpt run), not a grammar, an encoder-decoder or a sentence model")
        if isinstance(self.gen.model, (GPT, HFCausalLM)):
            sample_fast(self.gen.model, self.options)
        self.chat = bool(self.gen.info.get("chat"))
        # A remote model's tokenizer is not here: about 3 characters a token bounds English BPE from above.
        count = (lambda t: len(t) // 3 + 1) if self.remote else (lambda t: len(self.gen.tokenizer.encode(t)))
        longest = max(count(t) for t, _ in rows)
        self.max_new_tokens = int(self.options.get("max_new_tokens", min(256, longest * 3 // 2 + 8)))

    def prompt(self, label: str, examples: list[str]) -> Any:
        """An instruct model is asked for a numbered list of the label's texts, and its reply starts
        with the examples as the list's first items: it continues with the next item. (Asked for "one
        new example" instead, SmolLM2-135M mostly wrote a preamble, "Here is another example:".)"""
        if self.chat:
            what = self.descriptions.get(label) or f'texts labelled "{label}"'
            listed = "".join(f"{i}. {t}\n" for i, t in enumerate(examples, 1))
            return [{"role": "user", "content": f"Write {len(examples) + 1} examples of {what}, one per line."},
                    {"role": "assistant", "content": f"{listed}{len(examples) + 1}."}]
        head = f"{self.descriptions[label]}\n\n" if label in self.descriptions else ""
        return head + "".join(f"Label: {label}\nText: {t}\n\n" for t in examples) + f"Label: {label}\nText:"

    def fitting_prompt(self, label: str, examples: list[str]) -> Any:
        """The prompt with as many of `examples` as leave room in the context for the reply."""
        if self.remote:  # its server refuses a prompt beyond the context, with a clear message
            return self.prompt(label, examples)
        tok, limit = self.gen.tokenizer, getattr(self.gen.model, "max_context", None)
        while True:
            prompt = self.prompt(label, examples)
            if limit is None:
                return prompt
            length = len(tok.encode(tok.chat_prompt(prompt)) if self.chat else tok.encode(prompt, add_bos=True))
            if length + self.max_new_tokens <= limit:
                return prompt
            if len(examples) == 1:
                raise ConfigError(f"a prompt with one example of label {label!r} and a reply of up to {self.max_new_tokens} "
                                  f"tokens needs {length + self.max_new_tokens} tokens, beyond the model's context of {limit}; "
                                  "lower the generator option max_new_tokens or use a model with a longer context")
            examples = examples[:-1]

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        """`per_prompt` replies to each of ceil(n / per_prompt) prompts, each prompt's examples drawn afresh,
        in batches of `batch_size` replies."""
        rng = random.Random(f"{seed}/{label}/shots")
        texts, k = self.by_label[label], self.per_prompt
        prompts = [self.fitting_prompt(label, rng.sample(texts, min(self.shots, len(texts)))) for _ in range(-(-n // k))]
        step, replies = max(1, int(self.options.get("batch_size", 32)) // k), []
        for start in range(0, len(prompts), step):
            replies += self.gen.generate(prompts[start:start + step], seed=seed * 100003 + start, stop=["\n"],
                                         max_new_tokens=self.max_new_tokens, num_return_sequences=k,
                                         temperature=float(self.options.get("temperature", 0.9)),
                                         top_p=self.options.get("top_p", 0.95))
        return [clean_reply(r) for row in replies for r in (row if k > 1 else [row])][:n]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.argument or DEFAULT_PROMPT_SOURCE, "chat": self.chat, "shots": self.shots,
                "descriptions": self.descriptions, "options": {k: v for k, v in self.options.items() if k != "descriptions"}}


def clean_reply(text: str) -> str:
    """A model's reply as a row: its first line, without a list mark, a "Text:" prefix or quotes around it."""
    line = LIST_MARK.sub("", text.strip().split("\n")[0].strip()).strip()
    for left, right in QUOTES:
        if len(line) > 1 and line[0] == left and line[-1] == right:
            line = line[1:-1].strip()
    return line


@GENERATORS.register("mix")
class MixGenerator(SynthGenerator):
    """Several generators at once (`mix:ngram+prompt`): every chunk of a label's samples is split among
    them by their `shares` and shuffled together, so the filters (duplicates across generators
    included) and the label's row count see one stream. Each output row names the generator that
    wrote it. Generators fail differently (an n-gram model recombines the label's own words, a
    prompted model brings words the rows never had), so a mix dilutes each one's failures.

    Options: `shares` ({spec: weight}; default equal), a generator's own options under its spec
    (`{ngram: {prefix: 2}, prompt: {descriptions: {...}}}`), and any other option for all of them
    (`temperature`, `descriptions`). Specs are split at `+`, so a run path holding `+` cannot be a
    part."""

    name = "mix"
    takes_argument = True
    argument_name = "A+B"
    argument_required = True

    def __init__(self, argument: str | None, options: dict[str, Any]) -> None:
        super().__init__(argument, options)
        specs = [s.strip() for s in (argument or "").split("+")]
        if len(specs) < 2 or not all(specs):
            raise ConfigError(f"generator mix:{argument or ''} needs two or more generators joined by '+', "
                              "e.g. --generator mix:ngram+prompt")
        if len(set(specs)) < len(specs):
            raise ConfigError(f"generator mix:{argument} names a generator twice; give it a larger share instead "
                              "(generator_options={shares: {...}})")
        if any(s.partition(":")[0] == "mix" for s in specs):
            raise ConfigError(f"generator mix:{argument}: a mix cannot hold another mix; list all its generators in one")
        shares = options.get("shares") or dict.fromkeys(specs, 1)
        if not isinstance(shares, dict) or set(shares) != set(specs) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in shares.values()):
            raise ConfigError(f"generator option shares={shares!r} must give each of {specs} a positive weight, e.g. "
                              f"shares={{{', '.join(f'{s}: 1' for s in specs)}}}")
        common = {k: v for k, v in options.items() if k != "shares" and k not in specs}
        self.specs, self.shares = specs, [float(shares[s]) for s in specs]
        self.parts = [build_generator(s, {**common, **(options.get(s) or {})}) for s in specs]

    def train_privately(self, dp: dict[str, Any] | None, canaries: dict[str, Any] | None) -> None:
        for part in self.parts:
            part.train_privately(dp, canaries)

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        for i, part in enumerate(self.parts):
            part.progress = self.progress
            part.fit(rows, workdir / f"mix_{i}", chinese, seed)

    def counts(self, n: int) -> list[int]:
        """n split by the shares, largest remainders first (ties to the earlier generator)."""
        total = sum(self.shares)
        exact = [n * s / total for s in self.shares]
        counts = [int(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[:n - sum(counts)]:
            counts[i] += 1
        return counts

    def candidates(self, label: str, n: int, seed: int) -> list[Candidate]:
        out = [Candidate(t, label, source=spec)
               for i, (spec, part, k) in enumerate(zip(self.specs, self.parts, self.counts(n))) if k
               for t in part.sample(label, k, seed * 31 + i)]
        random.Random(seed).shuffle(out)  # a chunk cut short at the label's count cuts every generator alike
        return out

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        return [c.text for c in self.candidates(label, n, seed)]

    def trained_runs(self) -> dict[str, Path]:
        return {spec: run for spec, part in zip(self.specs, self.parts) for run in part.trained_runs().values()}

    def describe(self) -> dict[str, Any]:
        return {"name": f"mix:{self.argument}",
                "parts": [{**part.describe(), "share": share} for part, share in zip(self.parts, self.shares)]}
