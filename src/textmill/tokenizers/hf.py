"""A pretrained model's own tokenizer (Hugging Face `tokenizers`), behind textmill's Tokenizer interface.

Unlike textmill's trained tokenizers, whose special tokens take ids 0-3, a pretrained vocabulary
places its special tokens where its authors did (SmolLM2: `<|endoftext|>` 0, `<|im_start|>` 1,
`<|im_end|>` 2; GPT-2: one `<|endoftext|>` as bos and eos at 50256). The tokenizer owns those ids;
the decoding engine and the loss ask it. Encoding with `add_bos` adds what the model's own
post-processor adds (Llama and Gemma a `<bos>`, GPT-2 and SmolLM2 nothing), and an empty text gets
the bos (or eos) token so that a model can write from nothing. An instruct model's chat template
(Jinja, rendered as transformers renders it) turns messages into the prompt it was trained on.

Control tokens (`<label=pos>`, for label-conditioned fine-tuning) are appended after the pretrained
vocabulary as special tokens: every pretrained id keeps its meaning, and `vocab_index` maps the new
ones to -1 (their embedding rows start at the mean of the base's).

`tokenizer.json` holds the backend's own JSON, the special ids, the chat template and the control
tokens, so a run directory loads without transformers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import Tokenizer as Backend

from ..errors import ConfigError
from .base import Tokenizer


class HFTokenizer(Tokenizer):
    kind = "hf"

    def __init__(self, control_tokens: Sequence[str] = (), prefix_space: bool = False) -> None:
        if control_tokens or prefix_space:
            raise ConfigError("a pretrained tokenizer keeps its own vocabulary: control_tokens and prefix_space do not apply")
        self.prefix_space = False
        self.backend: Backend | None = None
        self.ids: dict[str, int | None] = {}
        self.chat_template: str | None = None
        self.controls: list[str] = []  # control tokens appended after the pretrained vocabulary

    @classmethod
    def from_transformers(cls, hf: Any) -> HFTokenizer:
        """Wrap a transformers fast tokenizer (its backend, special ids and chat template)."""
        tok = cls()
        backend = getattr(hf, "backend_tokenizer", None) or getattr(hf, "_tokenizer", None)
        if backend is None:
            raise ConfigError(f"{type(hf).__name__} is not a fast (Rust `tokenizers`) tokenizer; textmill needs one")
        tok._load_state({"backend": backend.to_str(), "chat_template": hf.chat_template,
                         "ids": {"bos": hf.bos_token_id, "eos": hf.eos_token_id, "pad": hf.pad_token_id, "unk": hf.unk_token_id}})
        return tok

    # -- the Tokenizer interface ---------------------------------------------------------------
    def train(self, texts: Iterable[str]) -> HFTokenizer:
        raise ConfigError("a pretrained tokenizer is not trained; it comes with its model")

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def specials(self) -> list[str]:  # type: ignore[override]
        return [t.content for _, t in sorted(self.backend.get_added_tokens_decoder().items()) if t.special]

    @property
    def bos_id(self) -> int:
        return self._id("bos", "eos")

    @property
    def eos_id(self) -> int:
        return self._id("eos", "bos")

    @property
    def pad_id(self) -> int:
        return self._id("pad", "eos", "bos")

    @property
    def unk_id(self) -> int:
        found = self.ids.get("unk")
        return -1 if found is None else found  # byte-level vocabularies have no unknown token

    def _id(self, *names: str) -> int:
        for name in names:
            if self.ids.get(name) is not None:
                return int(self.ids[name])  # type: ignore[arg-type]
        raise ConfigError(f"this pretrained tokenizer defines none of the {'/'.join(names)} tokens that generation needs")

    def special_id(self, token: str) -> int:
        found = self.backend.token_to_id(token)
        if found is None or token not in self.specials:
            raise ConfigError(f"{token!r} is not a special token of this tokenizer; known: {', '.join(self.specials)}")
        return found

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=add_bos).ids
        if add_bos and not ids:
            ids = [self.bos_id]
        return [*ids, self.eos_id] if add_eos else ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def plain_text(self, texts: Iterable[str]):
        return iter(texts)

    def to_document(self) -> dict[str, Any]:
        return {"format": "textmill-tokenizer", "version": 1, "kind": self.kind, "specials": [], **self._state()}

    def _state(self) -> dict[str, Any]:
        return {"backend": self.backend.to_str(), "ids": self.ids, "chat_template": self.chat_template,
                "controls": self.controls}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.backend = Backend.from_str(state["backend"])  # holds the control tokens as added special tokens
        self.ids = dict(state["ids"])
        self.chat_template = state.get("chat_template")
        self.controls = list(state.get("controls", []))

    def with_control_tokens(self, tokens: Sequence[str]) -> HFTokenizer:
        """A copy that also knows `tokens` (those it lacks), appended after the vocabulary."""
        added = [t for t in dict.fromkeys(tokens) if t not in self.specials]
        if not added:
            return self
        copy = HFTokenizer()
        copy._load_state(self._state())
        copy.backend.add_special_tokens(added)
        copy.controls = [*self.controls, *added]
        return copy

    # -- chat ------------------------------------------------------------------------------------
    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        """The prompt an instruct model was trained on for `messages` ({"role", "content"} each),
        ending where the assistant's reply starts. A last message of the assistant is the start of its
        reply, which the model continues (a prefilled answer, e.g. the first items of a list)."""
        if not self.chat_template:
            raise ConfigError("this model has no chat template (it is not an instruct model); pass a plain prompt "
                              "without --chat / messages")
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise ConfigError(f"a chat message is {{'role': ..., 'content': ...}} with text values, not {m!r}")
        from transformers.utils.chat_template_utils import render_jinja_template

        prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        asked = list(messages[:-1] if prefill else messages)
        rendered, _ = render_jinja_template(conversations=[asked], chat_template=self.chat_template,
                                            add_generation_prompt=True, **self._template_tokens())
        return rendered[0] + prefill

    def chat_reply(self, messages: Sequence[dict[str, str]], reply: str) -> str:
        """What follows `chat_prompt(messages)` when the assistant answers `reply`: the reply and the
        template's end of turn (what a chat fine-tune learns to write)."""
        from transformers.utils.chat_template_utils import render_jinja_template

        prompt = self.chat_prompt(messages)
        rendered, _ = render_jinja_template(conversations=[[*messages, {"role": "assistant", "content": reply}]],
                                            chat_template=self.chat_template, **self._template_tokens())
        full = rendered[0]
        if not full.startswith(prompt) or reply.strip() not in full[len(prompt):]:
            return reply + self.backend.id_to_token(self.eos_id)  # a template that renders past turns differently
        return full[len(prompt):]

    def _template_tokens(self) -> dict[str, str]:
        """The special tokens a chat template may name (`{{ bos_token }}`)."""
        out = {}
        for name in ("bos", "eos", "pad", "unk"):
            if self.ids.get(name) is not None:
                out[f"{name}_token"] = self.backend.id_to_token(int(self.ids[name]))
        return out

    def __repr__(self) -> str:
        return f"HFTokenizer(vocab_size={self.vocab_size}, bos={self.ids.get('bos')}, eos={self.ids.get('eos')})"

