"""Stopping criteria: `(input_ids (B, T)) -> (B,) bool`, True where a row is done; and the text of
one row as its tokens arrive (`IncrementalText`), cut at the first stop string."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor


class StoppingCriterion(Protocol):
    def __call__(self, input_ids: Tensor) -> Tensor: ...


def any_done(criteria: Sequence[StoppingCriterion], input_ids: Tensor) -> Tensor:
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for c in criteria:
        done |= c(input_ids)
    return done


@dataclass(frozen=True)
class MaxNewTokens:
    max_new: int
    prompt_len: int

    def __call__(self, input_ids: Tensor) -> Tensor:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] - self.prompt_len >= self.max_new)


@dataclass(frozen=True)
class EosToken:
    eos_id: int

    def __call__(self, input_ids: Tensor) -> Tensor:
        return input_ids[:, -1] == self.eos_id


@dataclass(frozen=True)
class StopStrings:
    """Done once the generated text contains any stop string (only the tail is decoded each step)."""

    strings: tuple[str, ...]
    decode: object  # ids -> text
    prompt_len: int

    def __call__(self, input_ids: Tensor) -> Tensor:
        # Each token decodes to at least one character, but byte-level pieces may need a few tokens.
        tail = 4 * max(map(len, self.strings)) + 8
        done = []
        for row in input_ids[:, self.prompt_len:].tolist():
            text = self.decode(row[-tail:])
            done.append(any(s in text for s in self.strings))
        return torch.tensor(done, dtype=torch.bool)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to (not including) the first stop string, and whether one was found."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class IncrementalText:
    """The continuation of one prompt as its tokens arrive. `push(token)` returns the text that is
    now safe to show: what could be the start of a stop string, or an incomplete UTF-8 sequence, is
    held back until it is resolved. `stopped` turns True once a stop string appears; `finish()`
    returns the rest. The pieces joined are exactly the whole continuation cut at its first stop.

    With a safety policy (`textmill.safety.Safety`), the text shown is its screened output: masked,
    and cut before a refused span (`stopped` and `filtered` turn True); the last `STREAM_HOLD`
    characters are held back so that a word still being written can be masked or cut."""

    def __init__(self, decode_continuation, prompt_ids: list[int], stops: Sequence[str], safety=None) -> None:
        self._decode = decode_continuation  # (prompt ids, new ids) -> text (Tokenizer.decode_continuation)
        self.prompt_ids = prompt_ids
        self.stops = stops
        self.safety = safety
        self.ids: list[int] = []
        self.stopped = self.filtered = False
        self._hold = max((len(s) for s in stops), default=1) - 1
        if safety is not None:
            from ..safety.policy import STREAM_HOLD

            self._hold = max(self._hold, STREAM_HOLD)
        self._sent = 0

    def _shown(self, final: bool) -> str:
        text, self.stopped = cut_at_stop(self._decode(self.prompt_ids, self.ids), self.stops)
        if self.safety is not None:  # what it finds is counted once, by `finish`
            text, self.filtered = self.safety.screen_output(text, final=final)
            self.stopped |= self.filtered
        return text

    def push(self, token) -> str:  # a token id (or whatever `decode_continuation` joins: a remote stream's pieces)
        self.ids.append(token)
        text = self._shown(final=False)
        safe = len(text) if self.stopped else len(text) - self._hold
        while safe > self._sent and text[safe - 1] == "\ufffd":  # a multi-byte character still arriving
            safe -= 1
        if safe <= self._sent:
            return ""
        piece = text[self._sent:safe]
        self._sent = safe
        return piece

    def finish(self) -> str:
        text = self._shown(final=True)
        piece = text[self._sent:]
        self._sent = len(text)
        return piece
