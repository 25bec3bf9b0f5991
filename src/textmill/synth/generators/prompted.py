"""`prompt[:SOURCE]`: no training. A pretrained model writes new rows of a label from few-shot prompts
of its real ones (LLM few-shot augmentation, as in Yoo et al. 2021's GPT3Mix, on a small local model)."""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from ...config import DECODER
from ...decoding.remote import is_remote
from ...errors import ConfigError
from ...loading import load
from ...models import GPT
from ...models.hf import HFCausalLM
from ..rows import Rows
from .base import DEFAULT_PROMPT_SOURCE, GENERATORS, SynthGenerator, check_described
from .pretrained import FastSampling, sample_fast

log = logging.getLogger(__name__)

# "6. ", "6) ", Chinese "6、" / "6，" / "6," (not "3,000"), bullets, "Text:", "Example 2:"
LIST_MARK = re.compile(r"^(?:\d{1,2}(?:[.)]\s+|[\u3001\uff0c\uff0e]\s*|,(?!\d)\s*)|[-*\u2022]\s+|text\s*:\s*|"
                       r"example\s*\d*\s*:\s*)", re.IGNORECASE)
QUOTES = ('""', "''", "\u201c\u201d", "\u300c\u300d")  # pairs that may wrap a whole reply


class PromptOptions(FastSampling):
    shots: int = Field(5, ge=1, description="real texts of the label in each prompt")
    per_prompt: int = Field(4, ge=1, description="replies sampled from each prompt, which is read once for them "
                                                 "(4: 1.4x the rows a second of 1, as many pass the filters)")
    # chosen by reading samples: T 1.0 without top-p wrote noticeably noisier rows
    temperature: float = Field(0.9, gt=0, le=5, description="sampling temperature")
    top_p: float | None = Field(0.95, gt=0, le=1, description="nucleus sampling (None: the whole distribution)")
    max_new_tokens: int | None = Field(None, ge=1, description="the longest reply, in tokens (default: 1.5 x the "
                                                                "longest real text, at most 256)")
    batch_size: int = Field(32, ge=1, description="replies generated at once")


@GENERATORS.register("prompt")
class PromptGenerator(SynthGenerator):
    """A pretrained model writes new rows from few-shot prompts holding `shots` real texts of the label,
    drawn afresh for every prompt. An instruct model (one with a chat template) continues a numbered
    list of the label's texts in its reply; a base model continues a list of `Label: X / Text: ...`
    entries. The label's description, where given, says what the label means. `prompt` runs
    SmolLM2-135M-Instruct; `prompt:SOURCE` any pretrained source or decoder run, or a model behind an
    OpenAI-compatible server (`prompt:openai:MODEL@http://host:port/v1`)."""

    name = "prompt"
    Options = PromptOptions
    samples = True
    takes_argument = True
    argument_name = "SOURCE"

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        o = self.options
        self.by_label: dict[str, list[str]] = {}
        for t, label in rows:
            self.by_label.setdefault(label, []).append(t)
        check_described(o.descriptions, set(self.by_label))
        for label, texts in sorted(self.by_label.items()):
            if len(texts) < o.shots:
                log.warning("label %r has %d examples, fewer than shots=%d: its prompts show all of them",
                            label, len(texts), o.shots)
        source = self.argument or DEFAULT_PROMPT_SOURCE
        self.progress(f"loading {source}", 0, None)
        self.gen = load(source)
        self.remote = is_remote(source)
        if not self.remote and getattr(getattr(self.gen, "model", None), "kind", None) != DECODER:
            raise ConfigError(f"generator prompt:{source}: a prompt needs a model that continues text (a pretrained "
                              "language model or a gpt run), not a grammar, an encoder-decoder or a sentence model")
        if isinstance(self.gen.model, (GPT, HFCausalLM)):
            sample_fast(self.gen.model, o)
        self.chat = bool(self.gen.info.get("chat"))
        # A remote model's tokenizer is not here: about 3 characters a token bounds English BPE from above.
        count = (lambda t: len(t) // 3 + 1) if self.remote else (lambda t: len(self.gen.tokenizer.encode(t)))
        longest = max(count(t) for t, _ in rows)
        self.max_new_tokens = o.max_new_tokens or min(256, longest * 3 // 2 + 8)

    def prompt(self, label: str, examples: list[str]) -> Any:
        """An instruct model is asked for a numbered list of the label's texts, and its reply starts
        with the examples as the list's first items: it continues with the next item. (Asked for "one
        new example" instead, SmolLM2-135M mostly wrote a preamble, "Here is another example:".)"""
        descriptions = self.options.descriptions
        if self.chat:
            what = descriptions.get(label) or f'texts labelled "{label}"'
            listed = "".join(f"{i}. {t}\n" for i, t in enumerate(examples, 1))
            return [{"role": "user", "content": f"Write {len(examples) + 1} examples of {what}, one per line."},
                    {"role": "assistant", "content": f"{listed}{len(examples) + 1}."}]
        head = f"{descriptions[label]}\n\n" if label in descriptions else ""
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
        o = self.options
        rng = random.Random(f"{seed}/{label}/shots")
        texts, k = self.by_label[label], o.per_prompt
        prompts = [self.fitting_prompt(label, rng.sample(texts, min(o.shots, len(texts)))) for _ in range(-(-n // k))]
        return self.replies(prompts, n, seed)

    def replies(self, prompts: list[Any], n: int, seed: int) -> list[str]:
        """The first `n` of `per_prompt` cleaned replies to each prompt, in batches of `batch_size` replies."""
        o = self.options
        k = o.per_prompt
        step, replies = max(1, o.batch_size // k), []
        for start in range(0, len(prompts), step):
            replies += self.gen.generate(prompts[start:start + step], seed=seed * 100003 + start, stop=["\n"],
                                         max_new_tokens=self.max_new_tokens, num_return_sequences=k,
                                         temperature=o.temperature, top_p=o.top_p)
        return [clean_reply(r) for row in replies for r in (row if k > 1 else [row])][:n]

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {"name": self.name, "source": self.argument or DEFAULT_PROMPT_SOURCE, "chat": self.chat, "shots": o.shots,
                "descriptions": o.descriptions, "options": o.model_dump(mode="json", exclude_unset=True, exclude={"descriptions"})}


def clean_reply(text: str) -> str:
    """A model's reply as a row: its first line, without a list mark, a "Text:" prefix or quotes around it."""
    line = LIST_MARK.sub("", text.strip().split("\n")[0].strip()).strip()
    for left, right in QUOTES:
        if len(line) > 1 and line[0] == left and line[-1] == right:
            line = line[1:-1].strip()
    return line
