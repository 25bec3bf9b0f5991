"""Decoding strategies over the step interface: greedy, sampling and beam search.

Each takes `(model, processors, stopping)` plus left-padded prompts `(B, T)` with their mask, and
works for every family that implements `start/step/reorder`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..models.base import Conditioning, StepModel, sample_tokens
from .processors import LogitsProcessor, apply_processors
from .stopping import StoppingCriterion, any_done


def repeat_rows(model: StepModel, state, logits: Tensor, ids: Tensor, samples: int) -> tuple:
    """Each row's state, next-token logits and ids `samples` times in a row: a prompt read once
    continues as several samples."""
    if samples == 1:
        return state, logits, ids
    index = torch.arange(ids.shape[0], device=ids.device).repeat_interleave(samples)
    return model.reorder(state, index), logits[index], ids[index]


@torch.no_grad()
def token_loop(model: StepModel, input_ids: Tensor, attention_mask: Tensor,
               processors: Sequence[LogitsProcessor], stopping: Sequence[StoppingCriterion], *,
               do_sample: bool, pad_id: int, generator: torch.Generator | None = None,
               conditioning: Conditioning | None = None, samples: int = 1) -> Iterator[tuple[Tensor, Tensor]]:
    """Greedy or sampled decoding, one step at a time.

    Yields `(tokens, active)` per step: the (B * samples,) new tokens, and which rows were still
    generating (finished rows receive `pad_id`). Ends when every row meets a stopping criterion.
    With `samples > 1`, each prompt is read once and its state repeated: rows `i * samples` to
    `(i + 1) * samples - 1` continue prompt i (a long few-shot prompt costs more than its replies).
    """
    B = input_ids.shape[0]
    cond = conditioning or Conditioning(B, input_ids.device)
    state = model.start(cond)
    logits, state = model.step(input_ids, state, attention_mask)
    state, logits, ids = repeat_rows(model, state, logits, input_ids, samples)
    B = ids.shape[0]
    finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    while True:
        scores = apply_processors(processors, ids, logits.float())
        if do_sample:
            nxt = sample_tokens(scores, generator)
        else:
            nxt = scores.argmax(-1)
        active = ~finished
        nxt = torch.where(active, nxt, torch.full_like(nxt, pad_id))
        ids = torch.cat([ids, nxt[:, None]], 1)
        yield nxt, active
        finished = finished | any_done(stopping, ids)
        if bool(finished.all()):
            return
        logits, state = model.step(nxt[:, None], state)


@dataclass
class _Hypotheses:
    """The finished hypotheses of one prompt, best `keep` by length-normalised score."""

    keep: int
    length_penalty: float
    items: list[tuple[float, list[int]]] = field(default_factory=list)

    def add(self, tokens: list[int], logprob: float) -> None:
        self.items.append((logprob / (max(len(tokens), 1) ** self.length_penalty), tokens))
        self.items.sort(key=lambda x: -x[0])
        del self.items[self.keep:]

    def full(self) -> bool:
        return len(self.items) >= self.keep

    def worst(self) -> float:
        return self.items[-1][0]


@torch.no_grad()
def beam_search(model: StepModel, input_ids: Tensor, attention_mask: Tensor,
                processors: Sequence[LogitsProcessor], *, num_beams: int, max_new_tokens: int, eos_id: int,
                length_penalty: float = 1.0, early_stopping: bool = True, num_return_sequences: int = 1,
                conditioning: Conditioning | None = None) -> list[list[tuple[float, list[int]]]]:
    """Beam search; returns, per prompt, the best `num_return_sequences` (score, new token ids).

    Scores are summed log-probabilities divided by `length ** length_penalty`. A finished hypothesis
    keeps its end-of-sequence token. Each prompt's beams are independent of the other prompts, so a
    prompt's result does not depend on its batch.
    """
    B, T = input_ids.shape
    K = num_beams
    if num_return_sequences > K:
        raise ValueError(f"num_return_sequences ({num_return_sequences}) must be <= num_beams ({K})")
    dev = input_ids.device
    ids = input_ids.repeat_interleave(K, 0)  # (B*K, T)
    cond = conditioning or Conditioning(B * K, dev)
    state = model.start(cond)
    logits, state = model.step(ids, state, attention_mask.repeat_interleave(K, 0))
    beam_scores = torch.full((B, K), float("-inf"), device=dev)
    beam_scores[:, 0] = 0.0  # all beams start identical: expand only the first
    hyps = [_Hypotheses(K, length_penalty) for _ in range(B)]
    done = [False] * B
    for t in range(max_new_tokens):
        logprobs = apply_processors(processors, ids, logits.float().log_softmax(-1))  # (B*K, V)
        V = logprobs.shape[-1]
        cand = (beam_scores.view(-1, 1) + logprobs).view(B, K * V)
        top_scores, top_idx = cand.topk(2 * K, dim=1)  # (B, 2K)
        next_beam, next_tok, next_score = [], [], []
        for b in range(B):
            chosen: list[tuple[int, int, float]] = []
            if not done[b]:
                for rank, (score, flat) in enumerate(zip(top_scores[b].tolist(), top_idx[b].tolist())):
                    beam, tok = divmod(flat, V)
                    if score == float("-inf"):
                        break
                    if tok == eos_id:
                        if rank < K:
                            hyps[b].add(ids[b * K + beam, T:].tolist() + [tok], score)
                    else:
                        chosen.append((beam, tok, score))
                    if len(chosen) == K:
                        break
                if hyps[b].full():
                    if early_stopping or not chosen:
                        done[b] = True
                    else:
                        best_running = chosen[0][2] / ((t + 1) ** length_penalty)
                        done[b] = best_running <= hyps[b].worst()
            chosen += [(0, eos_id, float("-inf"))] * (K - len(chosen))  # finished or starved: dead beams
            for beam, tok, score in chosen:
                next_beam.append(b * K + beam)
                next_tok.append(tok)
                next_score.append(score)
        if all(done):
            break
        index = torch.tensor(next_beam, device=dev)
        tokens = torch.tensor(next_tok, device=dev)
        beam_scores = torch.tensor(next_score, device=dev).view(B, K)
        ids = torch.cat([ids.index_select(0, index), tokens[:, None]], 1)
        state = model.reorder(state, index)
        logits, state = model.step(tokens[:, None], state)
    for b in range(B):  # out of budget: the running beams compete with the finished ones
        if not done[b]:
            for k in range(K):
                score = float(beam_scores[b, k])
                if score > float("-inf"):
                    hyps[b].add(ids[b * K + k, T:].tolist(), score)
    return [h.items[:num_return_sequences] for h in hyps]
