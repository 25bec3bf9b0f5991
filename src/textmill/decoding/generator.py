"""Text in, text out: prompts -> left-padded token batches -> a strategy -> decoded, stop-trimmed text.

`Generator` is what `textmill.load(run_dir)` returns for every token model. Options are validated by
`GenerationOptions`; logits processors are built from them in a fixed, documented order
(repetition penalty, presence and frequency penalties, no-repeat n-gram, bad words, min new tokens, special-token suppression, then,
when sampling, temperature, top-k, top-p, min-p) unless the caller passes its own list.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import torch

from ..config import SENTENCE
from ..data.prepare import label_token
from ..errors import ConfigError, GenerationError
from ..models.base import Conditioning, StepModel
from ..tokenizers import Tokenizer
from .options import GenerationOptions, parse_options
from .processors import (
    BadWords,
    LogitsProcessor,
    MinNewTokens,
    MinP,
    NoRepeatNGram,
    OccurrencePenalty,
    RepetitionPenalty,
    SuppressTokens,
    Temperature,
    TopK,
    TopP,
)
from .stopping import EosToken, IncrementalText, MaxNewTokens, StopStrings, cut_at_stop
from .strategies import beam_search, token_loop

if TYPE_CHECKING:
    from ..safety.policy import Safety

Prompt = Union[str, list[dict[str, str]]]  # a text, or a conversation of {"role", "content"} messages


class Generator:
    """A trained token model with its tokenizer: `generate`, `stream`, and `info`.

    A language model continues each prompt; `Seq2SeqGenerator` reads each prompt as a source."""

    continues_prompt = True

    def __init__(self, model: StepModel, tokenizer: Tokenizer, info: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = info or {}
        first = next(iter(model.parameters()), None)  # count-based models have none
        self.device = first.device if first is not None else torch.device("cpu")

    # -- building blocks ---------------------------------------------------------------------------
    def processors(self, opts: GenerationOptions, prompt_len: int) -> list[LogitsProcessor]:
        tok = self.tokenizer
        procs: list[LogitsProcessor] = []
        if opts.repetition_penalty is not None:
            procs.append(RepetitionPenalty(opts.repetition_penalty))
        if opts.presence_penalty or opts.frequency_penalty:
            procs.append(OccurrencePenalty(opts.presence_penalty, opts.frequency_penalty, prompt_len))
        if opts.no_repeat_ngram_size is not None:
            procs.append(NoRepeatNGram(opts.no_repeat_ngram_size))
        if opts.bad_words:
            procs.append(BadWords(tuple(ids for ids in (tuple(tok.encode(w)) for w in opts.bad_words) if ids)))
        if opts.min_new_tokens:
            procs.append(MinNewTokens(opts.min_new_tokens, prompt_len, tok.eos_id))
        procs.append(SuppressTokens(tuple({tok.pad_id, tok.bos_id} - {tok.eos_id})))  # bos may be eos (GPT-2's <|endoftext|>)
        if opts.strategy == "sample":
            if opts.temperature != 1.0:
                procs.append(Temperature(opts.temperature))
            if opts.top_k is not None:
                procs.append(TopK(opts.top_k))
            if opts.top_p is not None:
                procs.append(TopP(opts.top_p))
            if opts.min_p is not None:
                procs.append(MinP(opts.min_p))
        return procs

    def encode_prompts(self, prompts: Sequence[Prompt], truncate: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded `(ids, mask)` of `<bos> prompt` for each prompt; a conversation (a list of
        {"role", "content"} messages) is rendered by the model's chat template, which holds its own
        special tokens."""
        limit = getattr(self.model, "max_context", None)
        rows = []
        for p in prompts:
            if isinstance(p, str):
                ids = self.tokenizer.encode(p, add_bos=True)
            elif hasattr(self.tokenizer, "chat_prompt"):
                ids = self.tokenizer.encode(self.tokenizer.chat_prompt(p), add_bos=False)
            else:
                raise GenerationError("chat messages need an instruct model with a chat template (a pretrained source); "
                                      f"this is a {self.info.get('family')} run: pass text prompts")
            if limit is not None and len(ids) > limit:
                if not truncate:
                    raise GenerationError(
                        f"the prompt is {len(ids)} tokens (with <bos>) but the model's context is {limit}; "
                        "shorten it or pass truncate_prompt=True (CLI: --truncate-prompt) to keep its last tokens"
                    )
                ids = ids[len(ids) - limit:]
            rows.append(ids)
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r)
            mask[i, width - len(r):] = True
        return ids.to(self.device), mask.to(self.device)

    def prepare(self, prompts: Sequence[Prompt], opts: GenerationOptions,
                 conditioning: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor, Conditioning]:
        """What a strategy starts from: prompt ids and mask (B, T), and the model's conditioning. A
        label becomes its control token `<label=...>` in front of each prompt; with `chat`, a text
        prompt becomes a user message."""
        if opts.chat:
            prompts = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in prompts]
        if opts.label is not None:
            if any(not isinstance(p, str) for p in prompts):
                raise GenerationError("label conditions a text prompt; chat messages take no label")
            prompts = [self.label_token(opts.label) + p for p in prompts]
        ids, mask = self.encode_prompts(prompts, opts.truncate_prompt)
        return ids, mask, Conditioning(len(prompts), self.device, dict(conditioning or {}))

    @property
    def labels(self) -> list[str]:
        """The labels the model was trained with (from its `<label=...>` control tokens)."""
        return [t[len("<label="):-1] for t in self.tokenizer.specials if t.startswith("<label=") and t.endswith(">")]

    def label_token(self, label: str) -> str:
        if label not in self.labels:
            known = f"labels: {', '.join(self.labels)}" if self.labels else "it was trained without labels"
            raise GenerationError(f"label {label!r} is unknown to this model; {known}")
        return label_token(label)

    @staticmethod
    def prompt_ids(ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Per row: the prompt's ids without padding, what the continuation is decoded after."""
        return [row[m].tolist() for row, m in zip(ids, mask)]

    def _finish(self, new_ids: list[int], stops: Sequence[str], prompt_ids: list[int], safety: Safety | None) -> str:
        text = cut_at_stop(self.tokenizer.decode_continuation(prompt_ids, new_ids), stops)[0]
        return safety.screen_output(text)[0] if safety is not None else text

    @staticmethod
    def screen_prompts(prompts: Sequence[Prompt], safety: Safety | None) -> list[Prompt]:
        """Each prompt (each message of a conversation) as the safety policy lets the model read it;
        SafetyError when the policy refuses one."""
        if safety is None:
            return list(prompts)
        return [safety.screen_prompt(p) if isinstance(p, str) else
                [{**m, "content": safety.screen_prompt(m["content"])} for m in p] for p in prompts]

    # -- public API --------------------------------------------------------------------------------
    def chat(self, messages: Sequence[dict[str, str]], **options: Any) -> Any:
        """The assistant's reply to one conversation (a list of {"role", "content"} messages), rendered
        with an instruct model's chat template: `gen.chat([{"role": "user", "content": "Hi!"}])`."""
        return self.generate([list(messages)], **options)[0]

    def generate(self, prompts: str | Sequence[Prompt] = "", *, processors: Sequence[LogitsProcessor] | None = None,
                 conditioning: dict[str, Any] | None = None, safety: Safety | None = None, **options: Any) -> Any:
        """Continue each prompt. A single prompt returns a string, a list returns a list; with
        `num_return_sequences > 1` each prompt gives a list of strings instead of one string. A prompt
        may be a conversation (a list of {"role", "content"} messages) for an instruct model.

        `safety` (a `textmill.safety.Safety` policy) screens the prompts (masked, or SafetyError when
        refused) and the outputs (masked, cut before a refused span; `safety.counts` tallies both)."""
        single = isinstance(prompts, str)
        batch = self.screen_prompts([prompts] if single else list(prompts), safety)
        if not batch:
            return []
        opts = parse_options(options)
        n = opts.num_return_sequences
        model: StepModel = self.model  # type: ignore[assignment]
        if opts.strategy == "beam":  # the beams of a prompt share its conditioning
            ids, mask, cond = self.prepare(batch, opts, conditioning)
            heads = self.prompt_ids(ids, mask)
            procs = list(processors) if processors is not None else self.processors(opts, ids.shape[1])
            found = beam_search(model, ids, mask, procs, num_beams=opts.num_beams, max_new_tokens=opts.max_new_tokens,
                                eos_id=self.tokenizer.eos_id, length_penalty=opts.length_penalty,
                                early_stopping=opts.early_stopping, num_return_sequences=n,
                                conditioning=cond.repeat_interleave(opts.num_beams))
            texts = [[self._finish(seq, opts.stop, heads[i], safety) for _, seq in row] for i, row in enumerate(found)]
        else:  # several samples per prompt: each prompt is read once, except by latent models (one prior draw per sample)
            shared = n if model.kind != SENTENCE else 1
            rows = batch if shared > 1 else [p for p in batch for _ in range(n)]
            given = Conditioning(len(batch), self.device, dict(conditioning or {})).repeat_interleave(n // shared).extras
            ids, mask, cond = self.prepare(rows, opts, given)
            heads = [h for h in self.prompt_ids(ids, mask) for _ in range(shared)]
            outs: list[list[int]] = [[] for _ in heads]
            for tokens, active in self._loop(ids, mask, opts, processors, cond, shared):
                for i in torch.nonzero(active).flatten().tolist():
                    outs[i].append(int(tokens[i]))
            flat = [self._finish(o, opts.stop, h, safety) for o, h in zip(outs, heads)]
            texts = [flat[i * n:(i + 1) * n] for i in range(len(batch))]
        result = [row if n > 1 else row[0] for row in texts]
        return result[0] if single else result

    def stream(self, prompt: Prompt = "", *, processors: Sequence[LogitsProcessor] | None = None,
               conditioning: dict[str, Any] | None = None, safety: Safety | None = None, **options: Any) -> Iterator[str]:
        """Yield the continuation of one prompt piece by piece as it is generated (greedy or sampling).

        Text that could be the start of a stop string, or an incomplete UTF-8 sequence, is held back
        until it is resolved; joining the pieces gives exactly what `generate` returns. With `safety`,
        the stream is screened as it grows and ends before a refused span."""
        opts = parse_options(options)
        if opts.strategy == "beam" or opts.num_return_sequences > 1:
            raise ConfigError("streaming serves one sequence with greedy or sample decoding; beam search has no stream")
        ids, mask, cond = self.prepare(self.screen_prompts([prompt], safety), opts, conditioning)
        text = IncrementalText(self.tokenizer.decode_continuation, self.prompt_ids(ids, mask)[0], opts.stop, safety)
        for tokens, active in self._loop(ids, mask, opts, processors, cond):
            if not bool(active[0]):
                break
            piece = text.push(int(tokens[0]))
            if piece:
                yield piece
            if text.stopped:
                break
        piece = text.finish()
        if piece:
            yield piece

    def _loop(self, ids, mask, opts: GenerationOptions, processors, cond: Conditioning, samples: int = 1):
        procs = list(processors) if processors is not None else self.processors(opts, ids.shape[1])
        stopping = [MaxNewTokens(opts.max_new_tokens, ids.shape[1]), EosToken(self.tokenizer.eos_id)]
        if opts.stop:
            stopping.append(StopStrings(tuple(opts.stop), self.tokenizer.decode, ids.shape[1]))
        gen = None
        if opts.strategy == "sample":
            gen = opts.random(self.device)
        return token_loop(self.model, ids, mask, procs, stopping, do_sample=opts.strategy == "sample",
                          pad_id=self.tokenizer.pad_id, generator=gen, conditioning=cond, samples=samples)

