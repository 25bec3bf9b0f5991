"""Recurrent helpers shared by `rnn`, `seq2seq` and `vae`: they run an `nn.RNN/GRU/LSTM` over padded
batches so that padding never touches a hidden state."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

Hidden = Tensor | tuple[Tensor, Tensor]  # (layers * dirs, B, H), or (h, c) for an LSTM


def encode_right_padded(rnn: nn.RNNBase, x: Tensor, mask: Tensor) -> tuple[Tensor, Hidden]:
    """Run `rnn` over right-padded inputs x (B, S, E) with mask (B, S): outputs (B, S, H * dirs) and
    the final state of each sequence at its last real token."""
    lengths = mask.sum(1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, final


def top_layer(h: Tensor, layers: int, bidirectional: bool) -> Tensor:
    """The last layer of a final state, both directions side by side: (layers*dirs, B, H) -> (B, H*dirs)."""
    dirs = 2 if bidirectional else 1
    return h.view(layers, dirs, *h.shape[1:])[-1].transpose(0, 1).reshape(h.shape[1], -1)


def run_left_padded(rnn: nn.RNNBase, x: Tensor, state: Hidden, mask: Tensor | None) -> Hidden:
    """Advance `state` over x (B, T, E) whose rows may start with padding (mask False): each row's
    real inputs are shifted to the front and packed, so padding never enters the state."""
    if mask is not None and not bool(mask.all()):
        B, T = mask.shape
        lengths = mask.sum(1).clamp(min=1)  # (B,)
        src = (torch.arange(T, device=x.device)[None, :] + (T - lengths)[:, None]).clamp(max=T - 1)
        x = x.gather(1, src[:, :, None].expand_as(x))
        x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, state = rnn(x, state)
    return state


def last_hidden(state: Hidden) -> Tensor:
    """The top layer's hidden state (B, H)."""
    return (state[0] if isinstance(state, tuple) else state)[-1]


def select_rows(state: Hidden, index: Tensor) -> Hidden:
    """Keep batch rows `index` of a hidden state (beam search)."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)
    return state.index_select(1, index)
