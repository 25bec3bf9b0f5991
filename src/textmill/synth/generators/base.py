"""What every synth generator is: `fit` on the real training rows, then `sample` texts for a label,
reproducibly from a seed; its options declared once, as a pydantic model, so an unknown or mistyped
option is an error that names the generator and the options it takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationError

from ...config import Strict
from ...errors import ConfigError
from ...progress import Report
from ...registry import Registry
from ..filters import Candidate
from ..rows import Rows

DEFAULT_PROMPT_SOURCE = "embedded:smollm2-135m-instruct"  # the pretrained generators' default model


class NoOptions(Strict):
    """A generator without options."""


class SamplingOptions(Strict):
    """How a generator that samples a model draws its texts (what synth's `tune` chooses)."""

    temperature: float = Field(1.0, gt=0, le=5, description="sampling temperature")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling (None: the whole distribution)")
    max_new_tokens: int = Field(64, ge=1, description="the longest text a sample may be, in tokens")
    batch_size: int = Field(64, ge=1, description="samples generated at once")


class Descriptions(Strict):
    """`descriptions`, for generators that can say what a label means: {label: "positive movie reviews"}."""

    descriptions: dict[str, str] = Field(default_factory=dict, description="what each label's texts are, in words")


def check_described(descriptions: dict[str, str], labels: set[str]) -> None:
    """The generator option `descriptions` may describe only labels the data has."""
    unknown = sorted(set(descriptions) - labels)
    if unknown:
        raise ConfigError(f"descriptions name labels the data does not have: {unknown}; its labels: {sorted(labels)}")


class SynthGenerator:
    """fit(rows) once, then sample(label, n, seed) -> n texts (before filtering)."""

    name = "generator"
    Options: ClassVar[type[BaseModel]] = NoOptions
    takes_argument = False  # whether a spec `name:argument` means something
    argument_name = "PATH"  # what the argument is, for messages
    argument_required = False
    samples = False  # whether it samples a model (options temperature and top_p), which synth's tune can choose

    def __init__(self, argument: str | None, options: dict[str, Any] | None = None) -> None:
        self.argument = argument
        self.options: Any = parse_options(self.name, self.Options, options or {})
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
        return {"name": self.name, "options": self.options.model_dump(mode="json", exclude_unset=True)}

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


def parse_options(name: str, schema: type[BaseModel], options: dict[str, Any]) -> Any:
    """`options` as the generator's typed options, or an error that names the generator, the option
    and the options it takes."""
    try:
        return schema.model_validate(options)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(map(str, err["loc"])) or "options"
        takes = ", ".join(schema.model_fields) or "none"
        what = f"{key} is not one of its options" if err["type"] == "extra_forbidden" else \
            f"{key}={err.get('input')!r}: {err['msg'].removeprefix('Value error, ')}"
        raise ConfigError(f"generator {name!r}: option {what}; its options: {takes}") from None


GENERATORS: Registry[type[SynthGenerator]] = Registry("generator")


def generator_class(spec: str) -> type[SynthGenerator]:
    """The class a spec (`gpt`, `run:runs/yelp`, ...) names: an unknown name is an error that lists the known ones."""
    name, _, argument = spec.partition(":")
    if name == "vae":
        raise ConfigError("generator 'vae' cannot condition on labels; use 'cvae', the label-conditioned VAE")
    if name not in GENERATORS.names():
        raise ConfigError(f"unknown generator {name!r}; choose one of: {', '.join(map(usage, GENERATORS.names()))}")
    cls = GENERATORS.get(name)
    if argument and not cls.takes_argument:
        raise ConfigError(f"generator {name!r} takes no argument (got {spec!r}); use --generator {name}")
    return cls


def build_generator(spec: str, options: dict[str, Any] | None = None) -> SynthGenerator:
    """The generator a spec names, with its options checked."""
    return generator_class(spec)(spec.partition(":")[2] or None, dict(options or {}))


def usage(name: str) -> str:
    """How a generator is named on the command line: `eda`, `gpt[:BASE]`, `run:PATH`."""
    cls = GENERATORS.get(name)
    if not cls.takes_argument:
        return name
    return f"{name}:{cls.argument_name}" if cls.argument_required else f"{name}[:{cls.argument_name}]"
