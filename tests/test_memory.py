"""Training keeps freed memory for reuse (training/memory.py): inside, a 100 MB tensor comes from the heap,
not a fresh mapping; afterwards large blocks are mapped again; `textmill.train` trains inside it."""

from __future__ import annotations

import contextlib
import ctypes

import pytest
import torch

import textmill
from textmill.training import memory, run

from .helpers import tiny_config


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def mapped_bytes_of_a_new_tensor(libc, mb: int = 100) -> int:
    """How much glibc's mmap'd total grows while a tensor of `mb` MB is alive."""
    libc.mallinfo2.restype = MallInfo2
    before = libc.mallinfo2().hblkhd
    t = torch.empty(mb << 18)  # float32: mb MB
    grown = libc.mallinfo2().hblkhd - before
    del t
    return grown


def test_freed_memory_stays_in_the_heap_while_training_and_is_mapped_again_after():
    libc = memory._libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later")
    assert mapped_bytes_of_a_new_tensor(libc) >= 100 << 20  # glibc maps a block this large
    with memory.reuse_freed_memory():
        assert mapped_bytes_of_a_new_tensor(libc) == 0
    assert mapped_bytes_of_a_new_tensor(libc) >= 100 << 20


def test_train_runs_inside_it(tmp_path, corpus, monkeypatch):
    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(run, "reuse_freed_memory", recording)
    textmill.train(tiny_config(corpus, max_steps=1), tmp_path / "r", progress=False)
    assert entered == [True]
