"""How to decode, declared once: `GenerationOptions` is what `Generator.generate` takes, what `textmill
generate`'s options are built from (cli/options.py), and what the server's request fields become
(serve/schema.py, whose textmill-only fields are built from `API_CONTROLS`)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, ValidationError, model_validator

from ..config import Strict
from ..errors import ConfigError


class GenerationOptions(Strict):
    """Every decoding option, for every model family (processors apply in the order of generator.py)."""

    max_new_tokens: int = Field(100, ge=1, description="the most tokens to write after the prompt")
    strategy: Literal["greedy", "sample", "beam"] | None = Field(
        None, description="default: beam when num_beams > 1, else sample")
    temperature: float = Field(1.0, gt=0, description="sampling: below 1 sharper, above 1 flatter")
    top_k: int | None = Field(None, ge=1, description="sampling: keep the k most likely tokens")
    top_p: float | None = Field(None, gt=0, le=1, description="sampling: keep the most likely tokens up to this probability mass")
    min_p: float | None = Field(None, gt=0, le=1, description="sampling: drop tokens below this share of the top token's "
                                                            "probability")
    repetition_penalty: float | None = Field(None, gt=0, description="divide the score of every token already in the text by "
                                                                    "this (CTRL's; 1.2 is typical)")
    presence_penalty: float = Field(0.0, ge=-2, le=2, description="OpenAI's: lower a generated token's score once it appeared")
    frequency_penalty: float = Field(0.0, ge=-2, le=2, description="OpenAI's: lower it by this for every time it appeared")
    no_repeat_ngram_size: int | None = Field(None, ge=1, description="never repeat an n-gram of this size")
    min_new_tokens: int = Field(0, ge=0, description="no end of text before this many new tokens")
    bad_words: list[str] = Field(default_factory=list, description="strings never to generate")
    num_beams: int = Field(1, ge=1, description="beam search with this many beams (> 1)")
    length_penalty: float = Field(1.0, description="beam search: a hypothesis's score is divided by its length to this power")
    early_stopping: bool = Field(True, description="beam search: stop once num_beams hypotheses have ended")
    num_return_sequences: int = Field(1, ge=1, description="outputs per prompt")
    stop: list[str] = Field(default_factory=list, description="end the text at the first of these strings (excluded)")
    seed: int | None = Field(None, description="sampling: the same seed draws the same text (None: a fresh draw)")
    truncate_prompt: bool = Field(False, description="keep the end of a prompt longer than the context instead of failing")
    label: str | None = Field(None, description="label-conditioned models: generate text with this label")
    chat: bool = Field(False, description="instruct models: each prompt is a user message, rendered with the chat template")

    @model_validator(mode="after")
    def _consistent(self) -> GenerationOptions:
        if self.strategy is None:
            self.strategy = "beam" if self.num_beams > 1 else "sample"
        if self.strategy == "beam" and self.num_return_sequences > self.num_beams:
            raise ValueError(f"num_return_sequences ({self.num_return_sequences}) must be <= num_beams ({self.num_beams})")
        if self.strategy == "greedy" and self.num_return_sequences > 1:
            raise ValueError("greedy decoding returns one sequence per prompt; use strategy 'sample' or 'beam'")
        if self.strategy != "beam" and self.num_beams > 1:
            raise ValueError(f"num_beams={self.num_beams} needs strategy 'beam' (got {self.strategy!r})")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")
        return self

    def random(self, device: torch.device | str = "cpu") -> torch.Generator:
        """The generator a request draws from: seeded by `seed`, else from fresh OS entropy. Never the
        global one, which this does not touch (torch.seed() would reseed it)."""
        gen = torch.Generator(device=device)
        if self.seed is not None:
            gen.manual_seed(self.seed)
        else:
            gen.seed()  # this generator's own non-deterministic seed
        return gen


def parse_options(options: dict[str, Any]) -> GenerationOptions:
    try:
        return GenerationOptions(**options)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            key = ".".join(map(str, err["loc"])) or "options"
            if err["type"] == "extra_forbidden":
                msgs.append(f"{key}: unknown option; allowed: {', '.join(GenerationOptions.model_fields)}")
            else:
                msgs.append(f"{key}: {err['msg']}")
        raise ConfigError(f"invalid generation options: {'; '.join(msgs)}") from None


# How GenerationOptions travel in an OpenAI-compatible request: the fields OpenAI's API has (by our
# name -> theirs), and textmill's own controls, which travel as extra fields (`extra_body`).
API_FIELDS = {"max_new_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p",
              "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}
API_CONTROLS = {"top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty",
                "min_new_tokens": "min_tokens", "no_repeat_ngram_size": "no_repeat_ngram_size", "num_beams": "num_beams",
                "length_penalty": "length_penalty", "label": "label", "truncate_prompt": "truncate_prompt"}
