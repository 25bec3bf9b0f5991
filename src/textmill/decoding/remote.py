"""A model behind an OpenAI-compatible HTTP API (a `textmill serve`, vLLM, llama.cpp's server, OpenAI)
as a text-level generator: `generate`, `stream` and `chat`, like `Generator`, for `textmill generate`
and synth's prompt generator.

    openai:MODEL                    the base URL from OPENAI_BASE_URL
    openai:MODEL@http://host:8000/v1

The key comes from OPENAI_API_KEY (none needed for a server started without one). Text prompts go to
`/v1/completions`, conversations (and `chat=True`) to `/v1/chat/completions`. The prompts of one
`generate` call are sent concurrently, so a batching server decodes them together. textmill's own
controls (top_k, min_p, repetition_penalty, no_repeat_ngram_size, num_beams, label, ...) travel as
extra fields, which a textmill server reads; other servers may refuse them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, GenerationError
from .generator import Generator, Prompt
from .options import API_CONTROLS, API_FIELDS, GenerationOptions, parse_options
from .stopping import IncrementalText

if TYPE_CHECKING:
    from ..safety.policy import Safety

PREFIX = "openai:"


def is_remote(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


class RemoteGenerator:
    """See the module docstring. `concurrency`: requests in flight at once for one `generate` call."""

    continues_prompt = True
    labels: list[str] = []

    def __init__(self, spec: str, concurrency: int = 16) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigError("openai: sources need the openai package: pip install openai") from None
        model, _, url = spec[len(PREFIX):].rpartition("@") if "@http" in spec else (spec[len(PREFIX):], "", "")
        url = url or os.environ.get("OPENAI_BASE_URL")
        if not model:
            raise ConfigError(f"{spec!r}: name the model, openai:MODEL or openai:MODEL@http://host:port/v1")
        if not url:
            raise ConfigError(f"{spec!r} has no base URL: write openai:{model}@http://host:port/v1 or set OPENAI_BASE_URL")
        self._openai = openai
        self.client = openai.OpenAI(base_url=url, api_key=os.environ.get("OPENAI_API_KEY") or "none", max_retries=2)
        self.model_name, self.url, self.concurrency = model, url, concurrency
        card = self._call(lambda: self.client.models.retrieve(model))
        extra = card.model_extra or {}
        self.info: dict[str, Any] = {"family": "remote", "source": spec, "run_dir": spec, "url": url, "model": model,
                                     "chat": extra.get("chat_template", True)}  # OpenAI's own models all chat
        self.model = None

    def _call(self, fn):
        try:
            return fn()
        except self._openai.APIConnectionError:
            raise GenerationError(f"cannot reach {self.url}: is the server running (textmill serve ...)?") from None
        except self._openai.APIStatusError as e:
            message = e.body.get("message") if isinstance(e.body, dict) else None
            raise GenerationError(f"{self.url} answered {e.status_code}: {message or e.message}") from None

    def _request(self, prompt: Prompt, opts: GenerationOptions, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "n": opts.num_return_sequences}
        for ours, theirs in API_FIELDS.items():
            value = getattr(opts, ours)
            if ours == "max_new_tokens" or (value is not None and value != GenerationOptions.model_fields[ours].default):
                body[theirs] = value
        if opts.seed is not None:
            body["seed"] = opts.seed + index  # the prompts of a batch draw apart, as local rows do
        if opts.strategy == "greedy":
            body["temperature"] = 0
        if opts.stop:
            body["stop"] = opts.stop
        extra = {theirs: getattr(opts, ours) for ours, theirs in API_CONTROLS.items()
                 if getattr(opts, ours) != GenerationOptions.model_fields[ours].default}
        if extra:
            body["extra_body"] = extra
        chat = opts.chat or not isinstance(prompt, str)
        if chat:
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        else:
            body["prompt"] = prompt
        return body

    def _one(self, prompt: Prompt, opts: GenerationOptions, index: int) -> list[str]:
        body = self._request(prompt, opts, index)
        if "messages" in body:
            r = self._call(lambda: self.client.chat.completions.create(**body))
            return [c.message.content or "" for c in sorted(r.choices, key=lambda c: c.index)]
        r = self._call(lambda: self.client.completions.create(**body))
        return [c.text for c in sorted(r.choices, key=lambda c: c.index)]

    def generate(self, prompts: str | Sequence[Prompt] = "", *, safety: Safety | None = None, **options: Any) -> Any:
        """As `Generator.generate`: one prompt gives a string, a list gives a list (lists of strings with
        `num_return_sequences > 1`); `safety` screens prompts and outputs here, on the client."""
        if options.pop("processors", None) is not None or options.pop("conditioning", None) is not None:
            raise ConfigError("a remote model takes options, not processors or conditioning")
        single = isinstance(prompts, str)
        batch = Generator.screen_prompts([prompts] if single else list(prompts), safety)
        opts = parse_options(options)
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(batch)))) as pool:
            results = list(pool.map(lambda ip: self._one(ip[1], opts, ip[0]), enumerate(batch)))
        if safety is not None:
            results = [[safety.screen_output(t)[0] for t in r] for r in results]
        out = [r if opts.num_return_sequences > 1 else r[0] for r in results]
        return out[0] if single else out

    def chat(self, messages: Sequence[dict[str, str]], **options: Any) -> Any:
        return self.generate([list(messages)], **options)[0]

    def stream(self, prompt: Prompt = "", *, safety: Safety | None = None, **options: Any) -> Iterator[str]:
        opts = parse_options(options)
        if opts.strategy == "beam" or opts.num_return_sequences > 1:
            raise ConfigError("streaming serves one sequence with greedy or sample decoding; beam search has no stream")
        prompt = Generator.screen_prompts([prompt], safety)[0]
        if safety is None:
            yield from self._stream(prompt, opts)
            return
        text = IncrementalText(lambda _, pieces: "".join(pieces), [], [], safety)  # the pieces as its "tokens"
        for piece in self._stream(prompt, opts):
            shown = text.push(piece)
            if shown:
                yield shown
            if text.stopped:
                break
        rest = text.finish()
        if rest:
            yield rest

    def _stream(self, prompt: Prompt, opts: GenerationOptions) -> Iterator[str]:
        body = self._request(prompt, opts, 0)
        if "messages" in body:
            chunks = self._call(lambda: self.client.chat.completions.create(**body, stream=True))
            pieces = (c.choices[0].delta.content if c.choices else None for c in chunks)
        else:
            chunks = self._call(lambda: self.client.completions.create(**body, stream=True))
            pieces = (c.choices[0].text if c.choices else None for c in chunks)
        try:
            for piece in pieces:
                if piece:
                    yield piece
        except self._openai.APIError as e:
            raise GenerationError(f"{self.url}: {e}") from None
