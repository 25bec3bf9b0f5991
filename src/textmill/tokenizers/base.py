"""What every tokenizer shares: special and control tokens, batching, and the one-file format.

A tokenizer is one `tokenizer.json`: `{"format": "textmill-tokenizer", "version": 1, "kind": ...,
"specials": [...], ...}`. Special tokens come first in the vocabulary, in the order pad, bos, eos,
unk, then the user's control tokens (such as `<label=pos>`). Any special token that appears
literally in the text encodes to its single id; the rest of the text goes to the kind's own encoder.

With `prefix_space` (word and BPE tokenizers), a text's first plain piece is encoded as if it
started with a space, as SentencePiece's dummy prefix does: the first word of a text is then the
same token as that word mid-sentence (`" movie"`), instead of a second form (`"movie"`) that a model
trained on one-sentence documents writes mid-sentence, glued to the word before ("reachunlikable").
Generation drops that space again from a text written from its start.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_text

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
BASE_SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)  # every tokenizer's ids for them
FORMAT = "textmill-tokenizer"
CONTINUATION_CONTEXT = 8  # prompt tokens decoded with a continuation (see `decode_continuation`)


class Tokenizer:
    kind: str = ""
    joiner = ""  # what goes between decoded pieces (whitespace tokens: a space)

    def __init__(self, control_tokens: Sequence[str] = (), prefix_space: bool = False) -> None:
        self.prefix_space = prefix_space
        for tok in control_tokens:
            if not tok or tok in BASE_SPECIALS:
                raise ConfigError(f"control token {tok!r} is empty or reserved; use a form like '<label=pos>'")
        self.specials: list[str] = [*BASE_SPECIALS, *dict.fromkeys(control_tokens)]
        self._special_re = re.compile("(" + "|".join(re.escape(s) for s in sorted(self.specials, key=len, reverse=True)) + ")")

    # -- implemented by each kind -------------------------------------------------------------
    def train(self, texts: Iterable[str]) -> Tokenizer:
        raise NotImplementedError

    def _encode_piece(self, text: str) -> list[int]:
        raise NotImplementedError

    def _decode_piece(self, ids: list[int]) -> str:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def split_specials(self, text: str) -> list[str]:
        """`text` as plain pieces (even indices) and special tokens (odd), with the `prefix_space`
        before the first plain piece that has text."""
        parts = self._special_re.split(text)
        if self.prefix_space:
            first = next((i for i in range(0, len(parts), 2) if parts[i]), None)
            if first is not None and not parts[first][0].isspace():
                parts[first] = " " + parts[first]
        return parts

    def plain_text(self, texts: Iterable[str]) -> Iterator[str]:
        """The text between special tokens, what a vocabulary is trained on: a labelled document
        starts with `<label=X>`, whose characters must not become tokens of their own."""
        for t in texts:
            yield from (piece for piece in self.split_specials(t)[::2] if piece)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    def special_id(self, token: str) -> int:
        try:
            return self.specials.index(token)
        except ValueError:
            raise ConfigError(
                f"{token!r} is not a special token of this tokenizer; known: {', '.join(self.specials)}"
            ) from None

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.bos_id] if add_bos else []
        for i, piece in enumerate(self.split_specials(text)):
            if i % 2:
                ids.append(self.specials.index(piece))
            elif piece:
                ids.extend(self._encode_piece(piece))
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        out: list[str] = []
        run: list[int] = []
        n_special = len(self.specials)
        for i in ids:
            i = int(i)
            if i < n_special:
                if run:
                    out.append(self._decode_piece(run))
                    run = []
                if not skip_special:
                    out.append(self.specials[i])
            else:
                run.append(i)
        if run:
            out.append(self._decode_piece(run))
        return self.joiner.join(out)

    def decode_continuation(self, prompt_ids: Sequence[int], new_ids: Sequence[int]) -> str:
        """The text that `new_ids` add after `prompt_ids`, so that `prompt + continuation` reads right:
        both are decoded together and the prompt's own text cut off, so a tokenizer that joins tokens
        with a space (`whitespace`) puts one between the prompt and its continuation. A text written
        from its start (the prompt decodes to nothing: only special tokens) loses the space a
        `prefix_space` tokenizer put before its first word. The prompt's last few tokens are enough
        context for every kind."""
        tail = list(prompt_ids)[-CONTINUATION_CONTEXT:]
        head = self.decode(tail)
        if not head:
            text = self.decode(new_ids)
            return text[1:] if self.prefix_space and text.startswith(" ") else text
        whole = self.decode([*tail, *new_ids])
        return whole[len(head):] if whole.startswith(head) else self.decode(new_ids)

    def save(self, path: str | Path) -> None:
        """Write `tokenizer.json` atomically (a directory path gets `tokenizer.json` inside)."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        atomic_write_text(path, json.dumps(self.to_document(), ensure_ascii=False))

    def to_document(self) -> dict[str, Any]:
        """What `tokenizer.json` holds."""
        return {"format": FORMAT, "version": 1, "kind": self.kind, "specials": self.specials, "prefix_space": self.prefix_space,
                **self._state()}

    def with_control_tokens(self, tokens: Sequence[str]) -> Tokenizer:
        """A copy that also knows `tokens` (those it lacks), placed right after its own special tokens:
        every other id moves up by the number added (`vocab_index` maps the new ids to these)."""
        added = [t for t in dict.fromkeys(tokens) if t not in self.specials]
        if not added:
            return self
        doc = self.to_document()
        doc.update(self._make_room(doc, len(self.specials), added))
        doc["specials"] = [*self.specials, *added]
        return tokenizer_from_document(doc)

    def _make_room(self, doc: dict[str, Any], at: int, tokens: list[str]) -> dict[str, Any]:
        """The kind's state with `tokens` at ids `at`, `at + 1`, ... and the ids from `at` on moved up
        to make room (kinds with an explicit list of token strings after the specials need nothing:
        their ids follow from the list)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, specials={len(self.specials)})"


class VocabTokenizer(Tokenizer):
    """A tokenizer with an explicit list of token strings after the specials (char, word, whitespace).

    Subclasses split text into pieces (`split`) and say how pieces join back (`joiner`)."""

    def __init__(self, control_tokens: Sequence[str] = (), vocab_size: int = 1 << 20, min_frequency: int = 1,
                 prefix_space: bool = False) -> None:
        super().__init__(control_tokens, prefix_space)
        self.max_vocab = vocab_size
        self.min_frequency = min_frequency
        self.set_vocab([])

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def train(self, texts: Iterable[str]) -> VocabTokenizer:
        counts: Counter[str] = Counter()
        for piece in self.plain_text(texts):
            counts.update(self.split(piece))
        room = max(self.max_vocab - len(self.specials), 0)
        self.set_vocab([w for w, n in counts.most_common(room) if n >= self.min_frequency])
        return self

    def set_vocab(self, tokens: Sequence[str]) -> VocabTokenizer:
        """Use `tokens` (after the special tokens) as the vocabulary."""
        self.itos = [*self.specials, *(t for t in tokens if t not in self.specials)]
        self.stoi = {s: i for i, s in enumerate(self.itos) if i >= len(self.specials)}
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def _encode_piece(self, text: str) -> list[int]:
        get, unk = self.stoi.get, self.unk_id
        return [get(w, unk) for w in self.split(text)]

    def _decode_piece(self, ids: list[int]) -> str:
        return self.joiner.join(self.itos[i] for i in ids)

    def _state(self) -> dict[str, Any]:
        return {"vocab": self.itos[len(self.specials):]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.set_vocab(state["vocab"])


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; a run directory needs the tokenizer.json written by `textmill train`")
    damaged = f"{path} is damaged ({{}}); restore it from a copy of the run or retrain the run"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(damaged.format(f"not valid JSON: {str(e)[:100]}")) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a textmill tokenizer (no format={FORMAT!r} field)")
    try:
        return tokenizer_from_document(doc)
    except Exception as e:  # a missing or mistyped field; HF tokenizers raises plain Exceptions on a bad `hf` state
        raise CheckpointError(damaged.format(f"{type(e).__name__}: {str(e)[:100]}")) from None


def tokenizer_from_document(doc: dict[str, Any]) -> Tokenizer:
    from . import TOKENIZERS

    tok = TOKENIZERS.get(doc["kind"])(control_tokens=doc["specials"][len(BASE_SPECIALS):], prefix_space=doc.get("prefix_space", False))
    tok._load_state(doc)
    return tok


def vocab_index(base: Tokenizer, extended: Tokenizer) -> list[int]:
    """For each id of `extended` (`base.with_control_tokens(...)`), the id of the same token in
    `base`, or -1 for a token `base` lacks (textmill's kinds put control tokens right after their
    special tokens; a pretrained vocabulary appends them)."""
    n_base, n_ext = len(base.specials), len(extended.specials)
    if extended.specials[:n_base] != base.specials or extended.vocab_size - n_ext != base.vocab_size - n_base:
        raise ConfigError("the tokenizer is not the base tokenizer with control tokens added")
    if base.kind == "hf":  # a pretrained vocabulary keeps its ids; control tokens come after it
        return [*range(base.vocab_size), *[-1] * (extended.vocab_size - base.vocab_size)]
    return [*range(n_base), *[-1] * (n_ext - n_base), *range(n_base, base.vocab_size)]
