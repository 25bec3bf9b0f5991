"""Run configs: YAML -> pydantic -> `--set a.b=c` overrides -> validation.

Every error names the field and what is allowed, so a user can fix a config without reading code.
The resolved config is saved with every run as `train.yaml`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from .errors import ConfigError

T = TypeVar("T")


def checked(check: Callable[[T], T]) -> AfterValidator:
    """A field validator from a check that raises ConfigError: its message becomes the field's error
    (use it as `Annotated[list[str], checked(check_types)]`)."""

    def validate(value: T) -> T:
        try:
            return check(value)
        except ConfigError as e:
            raise ValueError(str(e)) from None

    return AfterValidator(validate)


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# What a family is, declared once on its config class (`kind = ...`), for the code that treats kinds differently:
DECODER = "decoder-only"  # continues a prompt (gpt, rnn, ngram)
ENCODER_DECODER = "encoder-decoder"  # maps a source text to a target text (seq2seq, transformer)
SENTENCE = "sentence"  # models each sentence on its own, with a latent code or an adversary (vae, cvae, gan)

MODEL_CONFIGS: dict[str, type[ModelConfig]] = {}  # family name -> its config class, filled as each family is defined


class ModelConfig(Strict):
    """Base of the per-family model configs. Each family file defines a subclass with a
    `family: Literal["name"] = "name"` field and a `kind`, and defining it registers the family, so a
    run config can be read without this module knowing the families."""

    kind: ClassVar[str]
    family: str
    context: int = Field(64, ge=1, description="tokens per training sequence (and GPT's position limit)")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        family = cls.model_fields["family"].default
        if isinstance(family, str):  # an abstract base of several families has none
            if family in MODEL_CONFIGS:
                raise ValueError(f"model family {family!r} is defined twice")
            MODEL_CONFIGS[family] = cls


def model_config_class(family: str) -> type[ModelConfig]:
    """The config class of a model family, or an error that lists the families."""
    try:
        return MODEL_CONFIGS[family]
    except KeyError:
        raise ConfigError(f"unknown model family {family!r}; choose one of: {', '.join(sorted(MODEL_CONFIGS))}") from None


Task = Literal["lm", "translation", "summarization", "dialogue", "keywords"]
PAIRED_TASKS = ("translation", "summarization", "dialogue", "keywords")


class DialogueConfig(Strict):
    history_turns: int = Field(3, ge=1, description="turns of history before each reply that form its source")
    speaker_markers: bool = Field(True, description="mark history turns <user>/<bot> (the reply is <bot>'s); "
                                                    "false: separate turns with <sep>")
    turn_separator: str = Field("__eou__", min_length=1, description="separates turns in one-dialogue-per-line files")


class KeywordsConfig(Strict):
    method: Literal["tfidf", "textrank"] = "tfidf"
    count: int = Field(5, ge=1, description="keywords extracted from each target text")


class CanaryConfig(Strict):
    """Random secrets inserted into the training data, to measure memorization afterwards
    (`textmill audit`; Carlini et al. 2019): `per_repeat` canaries for each count in `repeats`, each
    inserted that many times."""

    template: str = Field("my secret number is {secret}", description="the canary sentence; {secret} is filled in")
    alphabet: str = Field("0123456789", description="the characters a secret is drawn from")
    length: int = Field(6, ge=1, le=32, description="characters per secret")
    separator: str = Field(" ", description="between the secret's characters (a space: one token each for word tokenizers)")
    repeats: list[int] = Field(default_factory=lambda: [1, 10, 100], min_length=1,
                               description="how many times each group of canaries is inserted")
    per_repeat: int = Field(2, ge=1, le=100, description="canaries per repetition count")
    seed: int = 0

    @model_validator(mode="after")
    def _meaningful(self) -> CanaryConfig:
        if self.template.count("{secret}") != 1:
            raise ValueError("template must hold {secret} exactly once, e.g. 'my secret number is {secret}'")
        if len(set(self.alphabet)) < 2 or len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("alphabet needs at least two different characters, each once")
        if len(self.alphabet) ** self.length < 1000:
            raise ValueError(f"{len(self.alphabet)}^{self.length} possible secrets are too few to rank a canary among; "
                             "raise length or widen alphabet (at least 1,000)")
        if any(r < 1 for r in self.repeats):
            raise ValueError("repeats must be positive counts, e.g. [1, 10, 100]")
        return self


class DataConfig(Strict):
    source: str | dict[str, str] = Field(
        description="a file, a directory, or embedded:shakespeare / embedded:chinese_reviews; for translation, the "
                    "source side of parallel files; for labelled data, also a mapping label: file")
    format: Literal["auto", "text", "lines", "jsonl", "csv", "tsv", "parquet"] = "auto"
    text_field: str | int = "text"
    label_field: str | int | None = Field(None, description="field or column of each text's label (labelled data)")
    task: Task = Field("lm", description="lm: a corpus to continue; the others map a source text to a target text")
    target: str | None = Field(None, description="the target side of parallel files (one sentence per line)")
    source_field: str | int | None = Field(None, description="field or column of the source side (an int: a column "
                                                             "of a header-less CSV/TSV)")
    target_field: str | int | None = None
    valid_source: str | dict[str, str] | None = Field(None, description="a separate validation set (instead of val_fraction)")
    valid_target: str | None = None
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    split_seed: int = 0
    max_documents: int | None = Field(None, ge=1, description="use at most this many documents (pairs, for paired tasks)")
    instruction: str | None = Field(None, description="paired tasks on a gpt run fine-tuned from an instruct model (a chat): "
                                                      "what the user asks before each source (dialogue: the system message); "
                                                      "default per task (data/tasks.py)")
    dialogue: DialogueConfig = Field(default_factory=DialogueConfig)
    keywords: KeywordsConfig = Field(default_factory=KeywordsConfig)
    canaries: CanaryConfig | None = Field(None, description="insert random secrets into the training split to audit "
                                                             "memorization (language-model data)")

    @model_validator(mode="after")
    def _fields_fit_the_task(self) -> DataConfig:
        if self.canaries is not None and self.task != "lm":
            raise ValueError("canaries go into language-model data (task lm); an encoder-decoder run has no audit yet")
        paired_only = {"target": self.target, "source_field": self.source_field, "target_field": self.target_field}
        wrong = [k for k, v in paired_only.items() if v is not None]
        if wrong and self.task not in ("translation", "summarization"):
            raise ValueError(f"{', '.join(wrong)} describe(s) source/target data; set task to translation or summarization")
        if isinstance(self.source, dict) and (self.task != "lm" or not self.source):
            raise ValueError("a mapping label: file as source holds labelled texts; it needs task lm and at least one label")
        if self.valid_target is not None and self.valid_source is None:
            raise ValueError("valid_target needs valid_source (the source side of the validation files)")
        if (self.target is None) != (self.valid_target is None) and self.valid_source is not None:
            raise ValueError("parallel files: give both target and valid_target, or neither")
        return self


class TokenizerConfig(Strict):
    kind: Literal["char", "word", "whitespace", "bpe", "hf"] = Field(
        "char", description="hf: a pretrained model's own tokenizer (a run imported with `textmill import`), never trained")
    vocab_size: int = Field(8000, ge=16, description="upper bound for word and bpe vocabularies")
    min_frequency: int = Field(1, ge=1)
    segmenter: Literal["none", "jieba"] = "none"
    control_tokens: list[str] = Field(default_factory=list)
    prefix_space: bool = Field(False, description="word and bpe: encode each text as if it started with a space, so its first "
                                                  "word is the same token as mid-sentence (SentencePiece's dummy prefix)")

    @model_validator(mode="after")
    def _prefix_space_kind(self) -> TokenizerConfig:
        if self.prefix_space and self.kind not in ("word", "bpe"):
            raise ValueError(f"prefix_space is for word and bpe tokenizers (a {self.kind} tokenizer has no word-initial "
                             "space to share); drop it or use kind word or bpe")
        return self


class LoRAConfig(Strict):
    rank: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0, description="the update is scaled by alpha / rank")
    targets: list[str] = Field(default_factory=lambda: ["qkv", "proj", "fc"],
                               description="names of the linear layers that get adapters (gpt: qkv, proj, fc)")


class DPConfig(Strict):
    """Differentially private training (DP-SGD with Opacus, training/privacy.py): each training window's
    gradient is clipped to `max_grad_norm`, Gaussian noise is added, and windows are drawn by Poisson
    sampling. Give a target `epsilon` (the noise is chosen to reach it at max_steps) or a `noise_multiplier`."""

    epsilon: float | None = Field(None, gt=0, description="the privacy budget to reach at max_steps")
    delta: float | None = Field(None, gt=0, lt=1, description="default: 1 / (10 x training windows); must be below 1 / windows")
    noise_multiplier: float | None = Field(None, gt=0, description="instead of epsilon: the noise's standard deviation "
                                                                   "in units of max_grad_norm")
    max_grad_norm: float = Field(1.0, gt=0, description="each window's gradient is clipped to this norm")
    accountant: Literal["rdp", "prv"] = Field("prv", description="Opacus's privacy accountant")

    @model_validator(mode="after")
    def _one_budget(self) -> DPConfig:
        if (self.epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("give either epsilon (a target, e.g. 8) or noise_multiplier, not both or neither")
        return self


class TrainConfig(Strict):
    max_steps: int = Field(2000, ge=1)
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget; stops early when spent")
    batch_size: int = Field(12, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_lr: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float | None = Field(1.0, gt=0)
    eval_every: int = Field(250, ge=1)
    eval_batches: int = Field(20, ge=1)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross-entropy label smoothing (token objectives)")
    patience: int | None = Field(None, ge=1, description="stop after this many evaluations without improvement")
    log_every: int = Field(10, ge=1)
    seed: int = 1337
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; default: all cores")
    init_from: str | None = Field(None, description="fine-tune: a run directory, or a pretrained source (embedded:NAME, "
                                                      "a GGUF file, a Llama, Gemma 3 or GPT-2 Hugging Face directory), whose weights "
                                                      "and tokenizer this run starts from (same family and sizes: model "
                                                      "fields left out are the base's; labels it lacks are added)")
    lora: LoRAConfig | None = Field(None, description="fine-tune low-rank adapters only (training/lora.py); needs init_from")
    dp: DPConfig | None = Field(None, description="differentially private training (DP-SGD, Opacus): gpt and rnn "
                                                    "families, LoRA on pretrained models")

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError("both betas must be in [0, 1), e.g. [0.9, 0.99]")
        return v


class RunConfig(Strict):
    model: SerializeAsAny[ModelConfig]
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    source_tokenizer: TokenizerConfig | None = Field(
        None, description="paired tasks: a separate source vocabulary (default: one vocabulary for both sides)")
    data: DataConfig
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _family_fits_the_task(self) -> RunConfig:
        paired = self.data.task in PAIRED_TASKS
        encoder_decoder = self.model.kind == ENCODER_DECODER
        if encoder_decoder and not paired:
            raise ValueError(f"model family {self.model.family!r} maps a source text to a target text: set data.task to "
                             f"one of {', '.join(PAIRED_TASKS)}")
        chat = paired and self.model.kind == DECODER and self.train.init_from is not None
        if paired and not encoder_decoder and not chat:
            raise ValueError(f"data.task {self.data.task!r} needs an encoder-decoder family (seq2seq or transformer), or a "
                             f"gpt run fine-tuned from an instruct model (train.init_from), which learns it as a chat; "
                             f"not {self.model.family!r}" + (" from scratch" if self.model.kind == DECODER else ""))
        if self.source_tokenizer is not None and (not paired or chat):
            raise ValueError("source_tokenizer is for paired tasks (translation, summarization, dialogue, keywords) on "
                             "encoder-decoder families; a chat fine-tune reads both sides with its base's tokenizer")
        if self.data.instruction is not None and not chat:
            raise ValueError("data.instruction is what a chat fine-tune (a paired task on a gpt run with train.init_from) "
                             "asks before each source; remove it")
        if self.source_tokenizer is not None and getattr(self.model, "share_embeddings", False):
            raise ValueError("model.share_embeddings needs one vocabulary for source and target: remove the "
                             "source_tokenizer section or set model.share_embeddings: false")
        return self

    @field_validator("model", mode="before")
    @classmethod
    def _family_config(cls, v: Any) -> ModelConfig:
        if isinstance(v, ModelConfig):
            return v
        if not isinstance(v, dict) or "family" not in v:
            raise ValueError("model needs a 'family' key, e.g. family: gpt")
        if not isinstance(v["family"], str):
            raise ValueError(f"model.family must be a family name such as gpt, not {v['family']!r}")
        return model_config_class(v["family"]).model_validate(v)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _allowed_fields(loc: tuple[Any, ...], data: dict[str, Any]) -> list[str]:
    """The keys allowed at `loc` (used to turn 'extra key' errors into a helpful message)."""
    model: type[BaseModel] = RunConfig
    for i, part in enumerate(loc[:-1]):
        if i == 0 and part == "model":
            try:
                model = model_config_class(str(data["model"]["family"]))
            except (ConfigError, KeyError, TypeError):
                return []
            continue
        ann = model.model_fields.get(str(part))
        options = [] if ann is None else [ann.annotation, *get_args(ann.annotation)]  # `X | None` too
        section = next((o for o in options if isinstance(o, type) and issubclass(o, BaseModel)), None)
        if section is None:
            return []
        model = section
    return sorted(model.model_fields)


def format_validation_error(err: ValidationError, data: dict[str, Any], origin: str) -> str:
    lines = [f"invalid config ({origin}):"]
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_fields(loc, data)
            lines.append(f"  {key}: unknown key; allowed here: {', '.join(allowed)}")
        elif e["type"] == "missing":
            lines.append(f"  {key}: required but missing")
        else:
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {e['msg']}{shown}")
    return "\n".join(lines)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` overrides; values are parsed as YAML (`3`, `1e-3`, `true`, `[1, 2]`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.max_steps=500")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: {dotted!r} is not a section.key name, e.g. train.max_steps=500")
        node = data
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {p!r} is a value, not a section")
            node = nxt
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({str(e).splitlines()[0]}); quote it, "
                              f"e.g. {dotted}='\"{raw}\"'") from None
    return data


def validate_config(data: dict[str, Any], origin: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, data, origin)) from None


def load_config(source: str | Path | dict[str, Any] | RunConfig, overrides: list[str] | None = None) -> RunConfig:
    """Load a run config from a YAML path, a dict or a RunConfig, then apply overrides."""
    if isinstance(source, RunConfig):
        data, origin = source.model_dump(mode="json", exclude_unset=True), "config object"  # what was set stays set
    elif isinstance(source, dict):
        data, origin = dict(source), "config dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist; pass a YAML file such as configs/gpt/shakespeare_char.yaml")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path} is not UTF-8 text (byte offset {e.start}); a config is a YAML text file") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping with model/tokenizer/data/train sections")
        origin = str(path)
    return validate_config(apply_overrides(data, overrides or []), origin)
