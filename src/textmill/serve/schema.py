"""OpenAI's request bodies, as textmill reads them, and the options they become.

Fields OpenAI defines are accepted; those textmill does not implement (tools, logit_bias, suffix,
best_of > 1, ...) are a 400 that names them, and so is any field OpenAI does not define (as OpenAI
answers "Unrecognized request argument"), so a typo never passes silently. textmill's own decoding
controls are extra fields (`extra_body` in the openai client), built from `GenerationOptions` through
`API_CONTROLS` (decoding/options.py): the same types, limits and descriptions as everywhere else.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from ..decoding.options import API_CONTROLS, GenerationOptions

MAX_LOGPROBS = 20


LOOPBACK = ("localhost", "127.0.0.1", "::1")  # the names a loopback server answers to


@dataclass(frozen=True)
class ServeSettings:
    api_key: str | None = None  # clients send `Authorization: Bearer KEY`; None: no key needed
    allowed_hosts: tuple[str, ...] = LOOPBACK  # Host headers answered (a page on another name is DNS rebinding); "*": any
    cors_origins: tuple[str, ...] = ()  # other origins whose pages a browser lets call the API; "*": any
    max_tokens: int = 1024  # the most tokens a request may ask for (and chat's default)
    max_n: int = 8  # the most choices per request
    max_rows: int = 32  # rows one model decodes at once
    max_waiting: int = 256  # requests waiting per model; more get a 429
    timeout: float = 300.0  # seconds a request may take; then a 504 (or an error event when streaming)
    max_body_bytes: int = 1 << 20
    safety: Any = None  # a textmill.safety.Safety policy: refused prompts get a 400, outputs are masked or cut


class APIError(Exception):
    """An error answered in OpenAI's schema: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# textmill's own decoding controls, by the names a request gives them
_Controls: type[BaseModel] = create_model(
    "_Controls", __config__=ConfigDict(extra="forbid"),
    **{api: (GenerationOptions.model_fields[ours].annotation, copy.copy(GenerationOptions.model_fields[ours]))
       for ours, api in API_CONTROLS.items()})


class _Request(_Controls):  # type: ignore[misc, valid-type]
    model: str
    temperature: float = Field(1.0, ge=0, le=2, description="0: greedy decoding")
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: dict[str, bool] | None = None
    stop: str | list[str] | None = Field(None, validate_default=True)
    seed: int | None = None
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not s for s in stops):
            raise ValueError("stop sequences must be non-empty")
        return stops

    @model_validator(mode="after")
    def _supported(self) -> _Request:
        if self.logit_bias:
            raise APIError(400, "logit_bias is not supported by textmill; use the bad-words option of "
                                "`textmill generate` or drop it", param="logit_bias", code="unsupported_parameter")
        if self.num_beams > 1 and self.stream:
            raise APIError(400, "beam search (num_beams > 1) cannot stream; set stream to false", param="stream")
        if self.num_beams > 1 and self.n > self.num_beams:
            raise APIError(400, f"n ({self.n}) must be <= num_beams ({self.num_beams})", param="n")
        return self

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def options(self, max_new_tokens: int, chat: bool = False) -> dict[str, Any]:
        """The `GenerationOptions` of this request."""
        strategy = "beam" if self.num_beams > 1 else "greedy" if self.temperature == 0 else "sample"
        opts: dict[str, Any] = {ours: getattr(self, api) for ours, api in API_CONTROLS.items()}
        opts.update(max_new_tokens=max_new_tokens, strategy=strategy, num_return_sequences=self.n, stop=self.stop,
                    seed=self.seed, presence_penalty=self.presence_penalty, frequency_penalty=self.frequency_penalty, chat=chat)
        if strategy == "sample":
            opts.update(temperature=self.temperature, top_p=self.top_p if self.top_p < 1 else None)
        return opts


class CompletionRequest(_Request):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    @model_validator(mode="after")
    def _completion_supported(self) -> CompletionRequest:
        if self.suffix:
            raise APIError(400, "suffix (insertion) is not supported: textmill's models continue a prompt",
                           param="suffix", code="unsupported_parameter")
        if self.best_of not in (None, 1):
            raise APIError(400, "best_of is not supported; use n, or num_beams for beam search", param="best_of",
                           code="unsupported_parameter")
        if isinstance(self.prompt, list) and not self.prompt:
            raise APIError(400, "prompt is an empty list; send a string or a list of strings", param="prompt")
        return self

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(_Request):
    messages: list[Message]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None

    @model_validator(mode="after")
    def _chat_supported(self) -> ChatRequest:
        if not self.messages:
            raise APIError(400, "messages is empty; send at least one {\"role\": \"user\", \"content\": ...} message",
                           param="messages")
        if self.tools or self.tool_choice not in (None, "none"):
            raise APIError(400, "tools (function calling) are not supported by textmill", param="tools",
                           code="unsupported_parameter")
        if self.response_format and self.response_format.get("type") != "text":
            raise APIError(400, "response_format: only {\"type\": \"text\"} is supported", param="response_format",
                           code="unsupported_parameter")
        if self.top_logprobs is not None and not self.logprobs:
            raise APIError(400, "top_logprobs needs logprobs set to true", param="top_logprobs")
        return self

    @property
    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def logprob_count(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


class AttentionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    source: str
    target: str | None = None
