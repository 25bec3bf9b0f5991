"""Deterministic splits, and the datasets the trainer draws batches from.

Language modelling: documents are encoded as `<bos> text <eos>` and concatenated into one token
stream (nanoGPT style). Training draws random windows of `context + 1` tokens; validation walks
fixed, non-overlapping windows, so every evaluation of a run sees the same tokens.

Paired tasks: each pair is encoded as a source `text <eos>` and a target `<bos> text <eos>`.
Chat fine-tuning (a paired task on a gpt run from an instruct model): each pair is the task's chat
prompt through the tokenizer's chat template, then the reply and the template's end of turn; the
loss counts the reply only.
Sentence models (VAE, GAN) read each document as one `<bos> text <eos>` example, with its label.
Training batches hold examples of similar length (little padding); validation walks them in a fixed
order. Every dataset draws from the generator it is given, which the trainer seeds with the
step number, so a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypeVar

import numpy as np
import torch

from ..errors import DataError
from ..tokenizers import Tokenizer
from .tasks import Message, Pair, Task

log = logging.getLogger(__name__)
T = TypeVar("T")


def split_documents(docs: list[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """One document splits by characters (first 1-f for training, the tail for validation, as
    char-rnn and nanoGPT do); several are split by `holdout`."""
    if len(docs) == 1:
        text = docs[0]
        cut = int(len(text) * (1.0 - val_fraction))
        if cut == 0 or cut == len(text):
            raise DataError(f"the corpus has {len(text)} characters, too few to hold out {val_fraction:.0%} for validation")
        return [text[:cut]], [text[cut:]]
    return holdout(docs, val_fraction, seed)


def holdout(items: Sequence[T], fraction: float, seed: int = 0) -> tuple[list[T], list[T]]:
    """Shuffle with `seed` and hold out `fraction` (at least one item); both parts keep their order."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val = max(1, math.ceil(len(items) * fraction))
    if n_val >= len(items):
        raise DataError(f"{len(items)} examples are too few to hold out {fraction:.0%} for validation")
    held = set(order[:n_val])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def encode_stream(tokenizer: Tokenizer, docs: list[str]) -> np.ndarray:
    """`<bos> doc <eos>` for every document, concatenated; int32 token ids."""
    ids: list[int] = []
    for d in docs:
        ids.extend(tokenizer.encode(d, add_bos=True, add_eos=True))
    return np.asarray(ids, dtype=np.int32)


class LMBatch(NamedTuple):
    inputs: torch.Tensor   # (B, T)
    targets: torch.Tensor  # (B, T) the next token of each input (IGNORE where the loss skips it)

    @property
    def n_tokens(self) -> int:
        return int(self.targets.ne(IGNORE).sum())


@dataclass
class TokenStream:
    """A token stream cut into (input, target) windows of `context` tokens."""

    tokens: torch.Tensor  # (N,) int64
    context: int
    n_chars: int  # characters of the text behind the stream (for bits per character)

    @classmethod
    def from_docs(cls, tokenizer: Tokenizer, docs: list[str], context: int, what: str) -> TokenStream:
        tokens = torch.from_numpy(encode_stream(tokenizer, docs)).long()
        if len(tokens) < context + 1:
            raise DataError(
                f"the {what} split has {len(tokens)} tokens, fewer than one window of context+1={context + 1}; "
                "use more data, a smaller model.context or a smaller data.val_fraction"
            )
        return cls(tokens, context, sum(len(d) for d in docs))

    @property
    def tokens_per_char(self) -> float:
        return len(self.tokens) / max(self.n_chars, 1)

    def sample(self, batch_size: int, generator: torch.Generator) -> LMBatch:
        """`batch_size` random windows: inputs and next-token targets, both (B, T)."""
        starts = torch.randint(len(self.tokens) - self.context, (batch_size,), generator=generator)
        idx = starts[:, None] + torch.arange(self.context + 1)  # (B, T+1)
        window = self.tokens[idx]
        return LMBatch(window[:, :-1], window[:, 1:])

    @property
    def windows(self) -> int:
        """Fixed, non-overlapping windows of the stream: DP-SGD's examples."""
        return (len(self.tokens) - 1) // self.context

    def poisson(self, rate: float, generator: torch.Generator) -> tuple[LMBatch, bool]:
        """Each fixed window independently with probability `rate` (DP-SGD's Poisson sampling), and
        whether none was drawn (then one window stands in, for the caller to weigh by zero)."""
        chosen = torch.nonzero(torch.rand(self.windows, generator=generator) < rate).flatten()
        empty = len(chosen) == 0
        if empty:
            chosen = torch.zeros(1, dtype=torch.long)
        idx = chosen[:, None] * self.context + torch.arange(self.context + 1)
        window = self.tokens[idx]
        return LMBatch(window[:, :-1], window[:, 1:]), empty

    def batches(self, batch_size: int, max_batches: int | None = None) -> Iterator[LMBatch]:
        """Fixed, non-overlapping windows in order, `batch_size` at a time."""
        n = self.windows
        starts = torch.arange(n) * self.context
        for b, i in enumerate(range(0, n, batch_size)):
            if max_batches is not None and b >= max_batches:
                return
            idx = starts[i : i + batch_size, None] + torch.arange(self.context + 1)
            window = self.tokens[idx]
            yield LMBatch(window[:, :-1], window[:, 1:])


IGNORE = -100  # the target id of padding positions, which the loss skips (any token id, 0 included, is real)


class PairBatch(NamedTuple):
    src: torch.Tensor       # (B, S) source ids, right-padded
    src_mask: torch.Tensor  # (B, S) True at real source tokens
    tgt_in: torch.Tensor    # (B, T) <bos> y1 .. y(n-1), right-padded
    tgt_out: torch.Tensor   # (B, T) y1 .. <eos>, then IGNORE

    @property
    def n_tokens(self) -> int:
        return int(self.tgt_out.ne(IGNORE).sum())


def pad_right(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of right-padded rows."""
    width = max(1, max(map(len, rows)))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows])
    return ids, torch.arange(width)[None, :] < lengths[:, None]


def encode_source(tokenizer: Tokenizer, text: str, limit: int, keep: Literal["start", "end"]) -> tuple[list[int], bool]:
    """`text <eos>` cut to `limit` tokens keeping its start or its end, and whether it was cut."""
    ids = tokenizer.encode(text, add_eos=True)
    if len(ids) <= limit:
        return ids, False
    return (ids[:limit - 1] + [tokenizer.eos_id] if keep == "start" else ids[len(ids) - limit:]), True


class LengthBucketed:
    """Batches of examples of similar length, drawn from the generator the trainer seeds per step.

    Subclasses hold `order` (example indices sorted by length, ties broken by a seeded shuffle) and
    build a batch from a list of indices (`batch`)."""

    order: torch.Tensor

    def batch(self, index: Sequence[int]):
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.order)

    def sample(self, batch_size: int, generator: torch.Generator):
        """`batch_size` examples of similar length: a random run of the length-sorted order."""
        n = len(self)
        start = int(torch.randint(n, (1,), generator=generator))
        return self.batch(self.order[(start + torch.arange(min(batch_size, n))) % n].tolist())

    def batches(self, batch_size: int, max_batches: int | None = None) -> Iterator:
        """The examples in length order, `batch_size` at a time. With `max_batches`, that many
        batches evenly spaced over the length range (not just the shortest examples)."""
        starts = list(range(0, len(self), batch_size))
        if max_batches is not None and max_batches < len(starts):
            starts = [starts[round(i * (len(starts) - 1) / max(max_batches - 1, 1))] for i in range(max_batches)]
        for i in starts:
            yield self.batch(self.order[i:i + batch_size].tolist())


def length_order(lengths: Sequence[int], seed: int) -> torch.Tensor:
    jitter = torch.rand(len(lengths), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.argsort(torch.tensor(lengths, dtype=torch.float64) + jitter)


def encode_target(tokenizer: Tokenizer, text: str, limit: int) -> tuple[list[int], bool]:
    """`<bos> text <eos>` cut to `limit` predicted tokens (`limit + 1` ids), and whether it was cut."""
    ids = tokenizer.encode(text, add_bos=True, add_eos=True)
    return (ids[:limit + 1], True) if len(ids) - 1 > limit else (ids, False)


@dataclass
class PairDataset(LengthBucketed):
    """Encoded (source, target) pairs. Targets are `<bos> text <eos>`."""

    sources: list[list[int]]
    targets: list[list[int]]
    n_chars: int             # characters of the target texts (for bits per character)
    order: torch.Tensor      # pair indices sorted by length, ties broken by a seeded shuffle

    @classmethod
    def encode(cls, pairs: Sequence[tuple[str, str]], source_tokenizer: Tokenizer, target_tokenizer: Tokenizer, *,
               max_source_len: int, max_target_len: int, keep: Literal["start", "end"] = "start",
               what: str = "training", seed: int = 0) -> tuple[PairDataset, dict[str, float]]:
        """Encode pairs; sources and targets over their limits are cut, counted and logged."""
        sources, targets, cut_src, cut_tgt = [], [], 0, 0
        for src, tgt in pairs:
            ids, cut = encode_source(source_tokenizer, src, max_source_len, keep)
            sources.append(ids)
            cut_src += cut
            ids, cut = encode_target(target_tokenizer, tgt, max_target_len)
            targets.append(ids)
            cut_tgt += cut
        if cut_src:
            log.warning("%s data: cut %d of %d sources to model.max_source_len=%d tokens (keeping their %s); "
                        "raise max_source_len to keep more", what, cut_src, len(pairs), max_source_len, keep)
        _warn_cut(what, "targets", cut_tgt, len(pairs), max_target_len)
        order = length_order([len(s) + len(t) for s, t in zip(sources, targets)], seed)
        data = cls(sources, targets, sum(len(t) for _, t in pairs), order)
        stats = {"pairs": len(pairs), "source_tokens_mean": sum(map(len, sources)) / len(sources),
                 "target_tokens_mean": sum(map(len, targets)) / len(targets) - 1,
                 "sources_cut": cut_src, "targets_cut": cut_tgt}
        return data, stats

    @property
    def tokens_per_char(self) -> float:
        return sum(len(t) - 1 for t in self.targets) / max(self.n_chars, 1)

    def batch(self, index: Sequence[int]) -> PairBatch:
        src, src_mask = pad_right([self.sources[i] for i in index])
        tgt, tgt_mask = pad_right([self.targets[i] for i in index])
        return PairBatch(src, src_mask, tgt[:, :-1], tgt[:, 1:].masked_fill(~tgt_mask[:, 1:], IGNORE))


def _warn_cut(what: str, kind: str, cut: int, total: int, limit: int) -> None:
    if cut:
        log.warning("%s data: cut %d of %d %s to model.context=%d tokens; raise model.context to keep more",
                    what, cut, total, kind, limit)


class SentenceBatch(NamedTuple):
    tokens: torch.Tensor  # (B, T+1) <bos> text <eos>, right-padded
    labels: torch.Tensor  # (B,) label ids, -1 for unlabelled sentences
    mask: torch.Tensor    # (B, T+1) True at real tokens

    @property
    def tgt_in(self) -> torch.Tensor:
        return self.tokens[:, :-1]

    @property
    def tgt_out(self) -> torch.Tensor:
        """`text <eos>` with the padding token after it: sentences as token ids (a discriminator reads them)."""
        return self.tokens[:, 1:]

    @property
    def targets(self) -> torch.Tensor:
        """`text <eos>`, then IGNORE: what the loss predicts."""
        return self.tgt_out.masked_fill(~self.mask[:, 1:], IGNORE)

    @property
    def n_tokens(self) -> int:
        return int(self.mask[:, 1:].sum())


@dataclass
class SentenceDataset(LengthBucketed):
    """Encoded sentences (`<bos> text <eos>`, each its own example) with optional label ids."""

    sentences: list[list[int]]
    labels: list[int]
    n_chars: int
    order: torch.Tensor
    tokenizer: Tokenizer  # what encoded them (to show generated sentences as text)

    @classmethod
    def encode(cls, texts: Sequence[str], tokenizer: Tokenizer, *, max_len: int, labels: Sequence[int] | None = None,
               what: str = "training", seed: int = 0) -> tuple[SentenceDataset, dict[str, float]]:
        sentences, cut = [], 0
        for text in texts:
            ids, was_cut = encode_target(tokenizer, text, max_len)
            sentences.append(ids)
            cut += was_cut
        _warn_cut(what, "sentences", cut, len(texts), max_len)
        data = cls(sentences, list(labels) if labels is not None else [-1] * len(texts), sum(map(len, texts)),
                   length_order([len(s) for s in sentences], seed), tokenizer)
        return data, {"sentences": len(texts), "tokens_mean": sum(map(len, sentences)) / len(sentences) - 1,
                      "sentences_cut": cut}

    @property
    def tokens_per_char(self) -> float:
        return sum(len(s) - 1 for s in self.sentences) / max(self.n_chars, 1)

    def batch(self, index: Sequence[int]) -> SentenceBatch:
        tokens, mask = pad_right([self.sentences[i] for i in index])
        return SentenceBatch(tokens, torch.tensor([self.labels[i] for i in index], dtype=torch.long), mask)


def fit_chat(tokenizer: Tokenizer, task: Task, source: str, limit: int) -> tuple[list[Message], bool]:
    """The task's chat messages for `source`, with the source cut until the rendered prompt takes at
    most `limit` tokens (keeping its start or end, `task.keep`), and whether it was cut."""
    text = source
    for _ in range(16):
        messages = task.messages(text)
        excess = len(tokenizer.encode(tokenizer.chat_prompt(messages))) - limit
        if excess <= 0:
            return messages, text is not source
        ids = tokenizer.encode(text)
        if len(ids) <= 1:
            break
        # a little more than the excess (cutting changes the tokens at the cut); half when that leaves
        # nothing, since a dialogue's turns each cost the template's markup too
        keep = len(ids) - excess - 2
        keep = keep if keep > 0 else len(ids) // 2
        text = tokenizer.decode(ids[:keep] if task.keep == "start" else ids[len(ids) - keep:])
    raise DataError(f"the chat template and instruction alone take more than the {limit} tokens a prompt may take "
                    "here; raise model.context (or ask for fewer new tokens), or shorten data.instruction")


@dataclass
class ChatDataset(LengthBucketed):
    """Pairs as chats: each row is the prompt (the task's messages through the chat template) and the
    reply with the template's end of turn; the loss counts the reply's tokens only."""

    rows: list[list[int]]
    prompt_lengths: list[int]
    n_chars: int          # characters of the replies (for bits per character)
    order: torch.Tensor

    @classmethod
    def encode(cls, pairs: Sequence[Pair], task: Task, tokenizer: Tokenizer, *, context: int, what: str = "training",
               seed: int = 0) -> tuple[ChatDataset, dict[str, float]]:
        """Encode pairs into rows of at most `context + 1` tokens: a reply is cut to half of them, the
        source to what is left (both counted and logged)."""
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(f"a {task.name} pair becomes a chat for a gpt run, but this tokenizer has no chat template: "
                            "start from an instruct model (train.init_from: embedded:smollm2-135m-instruct) or train an "
                            "encoder-decoder family (transformer)")
        rows, prompts, cut_src, cut_tgt = [], [], 0, 0
        for source, reply in pairs:
            answer = tokenizer.encode(tokenizer.chat_reply(task.messages(source), reply))
            if tokenizer.eos_id in answer:  # the end of turn; what the template writes after it is the next turn's
                answer = answer[:answer.index(tokenizer.eos_id) + 1]
            if len(answer) > context // 2:
                answer, cut_tgt = answer[:context // 2], cut_tgt + 1
            messages, cut = fit_chat(tokenizer, task, source, context + 1 - len(answer))
            prompt = tokenizer.encode(tokenizer.chat_prompt(messages))
            rows.append(prompt + answer)
            prompts.append(len(prompt))
            cut_src += cut
        if cut_src:
            log.warning("%s data: cut %d of %d sources to fit model.context=%d tokens with their replies (keeping their %s); "
                        "raise model.context to keep more", what, cut_src, len(pairs), context, task.keep)
        if cut_tgt:
            log.warning("%s data: cut %d of %d replies to %d tokens (half of model.context); raise model.context to keep "
                        "more", what, cut_tgt, len(pairs), context // 2)
        data = cls(rows, prompts, sum(len(t) for _, t in pairs), length_order([len(r) for r in rows], seed))
        replies = [len(r) - p for r, p in zip(rows, prompts)]
        return data, {"pairs": len(pairs), "prompt_tokens_mean": sum(prompts) / len(prompts),
                      "reply_tokens_mean": sum(replies) / len(replies), "sources_cut": cut_src, "replies_cut": cut_tgt}

    @property
    def tokens_per_char(self) -> float:
        return sum(len(r) - p for r, p in zip(self.rows, self.prompt_lengths)) / max(self.n_chars, 1)

    def batch(self, index: Sequence[int]) -> LMBatch:
        ids, mask = pad_right([self.rows[i] for i in index])
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], IGNORE)
        starts = torch.tensor([self.prompt_lengths[i] for i in index])
        return LMBatch(ids[:, :-1], targets.masked_fill(torch.arange(targets.shape[1])[None, :] < starts[:, None] - 1, IGNORE))
