"""What a run trains on: its tokenizers and its training and validation datasets.

The objective says which kind of data it needs: a token stream (language models read documents
into one stream), pairs (paired tasks read (source, target) pairs through their task adapter) or
sentences (each document one example, with its label for label-conditioned families). A paired task
on a language model (a gpt run fine-tuned from an instruct model) reads its pairs as chats. Paired tasks
share one vocabulary for both sides unless the config has a `source_tokenizer` section; the source
tokenizer is then saved as `source_tokenizer.json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DataConfig, ModelConfig, RunConfig, TokenizerConfig
from ..errors import DataError
from ..tokenizers import Tokenizer, build_tokenizer, load_tokenizer
from .canaries import Canary, insert_canaries, make_canaries, spelled_alphabet
from .datasets import ChatDataset, PairDataset, SentenceDataset, TokenStream, holdout, split_documents
from .sources import read_documents, read_labelled
from .tasks import Pair, Task, build_task

TOKENIZER, SOURCE_TOKENIZER = "tokenizer.json", "source_tokenizer.json"


@dataclass
class Prepared:
    tokenizers: dict[str, Tokenizer]  # file name in the run directory -> tokenizer; TOKENIZER is the target side
    train: TokenStream | PairDataset | ChatDataset | SentenceDataset
    val: TokenStream | PairDataset | ChatDataset | SentenceDataset
    dims: dict[str, int] = field(default_factory=dict)    # model sizes beyond vocab_size (source_vocab_size, n_labels)
    stats: dict[str, Any] = field(default_factory=dict)   # what reading and encoding did, for the run's log
    meta: dict[str, Any] = field(default_factory=dict)    # facts the run keeps in config.json (label names)

    @property
    def tokenizer(self) -> Tokenizer:
        return self.tokenizers[TOKENIZER]


def label_token(label: str) -> str:
    """The control token that asks a language model for text with `label`."""
    return f"<label={label}>"


def is_labelled(cfg: DataConfig) -> bool:
    return isinstance(cfg.source, dict) or cfg.label_field is not None


def lm_documents(cfg: DataConfig) -> tuple[list[str], list[str]]:
    """Training and validation documents: `valid_source`, or a split of `source`. Labelled data
    becomes `<label=X>text`, so a language model learns to continue a label's control token."""
    if is_labelled(cfg):
        train_rows, val_rows = labelled_documents(cfg)
        train = [label_token(label) + t for t, label in train_rows]
        val = [label_token(label) + t for t, label in val_rows]
    else:
        docs = read_documents(cfg)
        train, val = ((docs, read_documents(cfg.model_copy(update={"source": cfg.valid_source}))) if cfg.valid_source
                      else split_documents(docs, cfg.val_fraction, cfg.split_seed))
    if cfg.canaries is not None:
        train = insert_canaries(train, run_canaries(cfg), cfg.canaries.seed)
    return train, val


def run_canaries(cfg: DataConfig) -> list[Canary]:
    """The canaries a run with this data config trains on (labelled data: each under a label's token)."""
    assert cfg.canaries is not None
    labels = sorted({label for _, label in labelled_documents(cfg)[0]}) if is_labelled(cfg) else None
    return make_canaries(cfg.canaries, [label_token(x) for x in labels] if labels else None)


def source_tokenizer(run_dir: Path) -> Tokenizer:
    """The source-side tokenizer of a paired run (its only tokenizer when the vocabulary is shared)."""
    path = run_dir / SOURCE_TOKENIZER
    return load_tokenizer(path if path.is_file() else run_dir / TOKENIZER)


def _with_controls(cfg: TokenizerConfig, extra: tuple[str, ...]) -> TokenizerConfig:
    return cfg.model_copy(update={"control_tokens": list(dict.fromkeys([*cfg.control_tokens, *extra]))})


def prepare(cfg: RunConfig, run_dir: Path, resume: bool = False, kind: str = "stream", labelled: bool = False,
            base: Path | None = None) -> Prepared:
    """Read, split and encode the data of `cfg` as `kind` ("stream", "pairs" or "sentences", with
    labels when `labelled`). Tokenizers are trained on the training split, loaded from `run_dir`
    when resuming, or, when fine-tuning, the `base` run's with the control tokens this run adds."""
    if kind == "pairs":
        return _pairs(cfg, run_dir, resume, base)
    if kind == "sentences":
        return _sentences(cfg, run_dir, resume, labelled, base)
    if cfg.data.task != "lm":
        return _chats(cfg, run_dir, resume, base)
    train_docs, val_docs = lm_documents(cfg.data)
    tok = load_tokenizer(run_dir) if resume else new_tokenizer(lm_tokenizer_config(cfg, train_docs),
                                                               train_docs + spelled_alphabet(cfg.data.canaries), base)
    context = cfg.model.context
    return Prepared({TOKENIZER: tok}, TokenStream.from_docs(tok, train_docs, context, "training"),
                    TokenStream.from_docs(tok, val_docs, context, "validation"))


def new_tokenizer(tok_cfg: TokenizerConfig, texts: list[str], base: Path | None = None, name: str = TOKENIZER) -> Tokenizer:
    """A tokenizer trained on `texts`; when fine-tuning, the `base` run's tokenizer file `name` with
    the control tokens of `tok_cfg` it lacks."""
    if base is not None:
        return load_tokenizer(base / name).with_control_tokens(tok_cfg.control_tokens)
    return build_tokenizer(tok_cfg, texts)


def lm_tokenizer_config(cfg: RunConfig, train_docs: list[str]) -> TokenizerConfig:
    """The tokenizer config of a language model, with the control token of every label of labelled
    data (each training document of labelled data starts with its label's token: `lm_documents`)."""
    if not is_labelled(cfg.data):
        return cfg.tokenizer
    return _with_controls(cfg.tokenizer, tuple(sorted({d[:d.index(">") + 1] for d in train_docs})))


def labelled_documents(d: DataConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Training and validation (text, label) rows: `valid_source`, or a held-out share."""
    rows = read_labelled(d)
    if d.valid_source:
        return rows, read_labelled(d.model_copy(update={"source": d.valid_source, "max_documents": None}))
    return holdout(rows, d.val_fraction, d.split_seed)


def _sentences(cfg: RunConfig, run_dir: Path, resume: bool, labelled: bool, base: Path | None) -> Prepared:
    d = cfg.data
    if labelled:
        train_rows, val_rows = labelled_documents(d)
    else:
        docs = read_documents(d)
        if len(docs) == 1 and not d.valid_source:
            raise DataError(f"{d.source} is one document, but model family {cfg.model.family!r} learns from separate "
                            "sentences: set data.format: lines (one sentence per line) or use a table")
        train_docs, val_docs = (docs, read_documents(d.model_copy(update={"source": d.valid_source}))) if d.valid_source \
            else holdout(docs, d.val_fraction, d.split_seed)
        train_rows, val_rows = [(t, "") for t in train_docs], [(t, "") for t in val_docs]
    labels = sorted({label for _, label in train_rows}) if labelled else []
    unseen = sorted({label for _, label in val_rows} - set(labels)) if labelled else []
    if unseen:
        raise DataError(f"validation labels {unseen} never occur in the training data (labels: {labels})")
    ids = {label: i for i, label in enumerate(labels)}
    texts = [t for t, _ in train_rows]
    tok = load_tokenizer(run_dir) if resume else new_tokenizer(cfg.tokenizer, texts, base)
    encode = lambda rows, what: SentenceDataset.encode(  # noqa: E731
        [t for t, _ in rows], tok, max_len=cfg.model.context, what=what, seed=d.split_seed,
        labels=[ids[label] for _, label in rows] if labelled else None)
    train, train_stats = encode(train_rows, "training")
    val, val_stats = encode(val_rows, "validation")
    dims, meta = ({"n_labels": len(labels)}, {"labels": labels}) if labelled else ({}, {})
    return Prepared({TOKENIZER: tok}, train, val, dims, {"train": train_stats, "validation": val_stats}, meta)


def _pairs(cfg: RunConfig, run_dir: Path, resume: bool, base: Path | None) -> Prepared:
    task, train_pairs, val_pairs = paired_data(cfg.data)
    sources, targets = [task.format_source(s) for s, _ in train_pairs], [t for _, t in train_pairs]
    if resume:
        tgt_tok, src_tok = load_tokenizer(run_dir / TOKENIZER), source_tokenizer(run_dir)
    elif cfg.source_tokenizer is None:
        tgt_tok = src_tok = new_tokenizer(_with_controls(cfg.tokenizer, task.control_tokens), sources + targets, base)
    else:
        tgt_tok = new_tokenizer(cfg.tokenizer, targets, base)
        src_tok = new_tokenizer(_with_controls(cfg.source_tokenizer, task.control_tokens), sources, base, SOURCE_TOKENIZER)
    tokenizers = {TOKENIZER: tgt_tok} if src_tok is tgt_tok else {TOKENIZER: tgt_tok, SOURCE_TOKENIZER: src_tok}
    train, train_stats = encode_pairs(train_pairs, task, src_tok, tgt_tok, cfg.model, "training", cfg.data.split_seed)
    val, val_stats = encode_pairs(val_pairs, task, src_tok, tgt_tok, cfg.model, "validation", cfg.data.split_seed)
    dims = {} if src_tok is tgt_tok else {"source_vocab_size": src_tok.vocab_size}
    return Prepared(tokenizers, train, val, dims, {"task": task.name, "train": train_stats, "validation": val_stats})


def _chats(cfg: RunConfig, run_dir: Path, resume: bool, base: Path | None) -> Prepared:
    task, train_pairs, val_pairs = paired_data(cfg.data)
    tok = load_tokenizer(run_dir) if resume else new_tokenizer(cfg.tokenizer, [], base)
    encode = lambda pairs, what: ChatDataset.encode(pairs, task, tok, context=cfg.model.context, what=what,  # noqa: E731
                                                    seed=cfg.data.split_seed)
    train, train_stats = encode(train_pairs, "training")
    val, val_stats = encode(val_pairs, "validation")
    return Prepared({TOKENIZER: tok}, train, val, stats={"task": task.name, "chat": True, "train": train_stats,
                                                         "validation": val_stats})


def paired_data(d: DataConfig) -> tuple[Task, list[Pair], list[Pair]]:
    """The task and its training and validation pairs (`valid_source`, or a held-out share)."""
    task = build_task(d)
    train_pairs = task.pairs(d.source, d.target, "training")
    if d.valid_source:
        return task, train_pairs, task.pairs(d.valid_source, d.valid_target, "validation")
    return task, *holdout(train_pairs, d.val_fraction, d.split_seed)


def encode_pairs(pairs: list[Pair], task: Task, source_tok: Tokenizer, target_tok: Tokenizer, model: ModelConfig,
                 what: str, seed: int = 0) -> tuple[PairDataset, dict[str, float]]:
    """Pairs as the model reads them: sources formatted by the task, both sides cut to the model's limits."""
    formatted = [(task.format_source(s), t) for s, t in pairs]
    return PairDataset.encode(formatted, source_tok, target_tok, max_source_len=model.max_source_len,
                              max_target_len=model.context, keep=task.keep, what=what, seed=seed)
