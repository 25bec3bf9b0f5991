"""Training keeps freed memory for reuse (training/memory.py): inside, a 100 MB tensor comes from the heap,
not a fresh mapping; afterwards large blocks are mapped again; `textmill.train` trains inside it."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

import textmill
from textmill.training import run

from .helpers import tiny_config

MEASURE = """
import ctypes, torch
from textmill.training import memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = memory._libc()
if libc is None or not hasattr(libc, "mallinfo2"):
    raise SystemExit(3)
libc.mallinfo2.restype = MallInfo2

def mapped():  # how much glibc's mmap'd total grows while a 100 MB tensor is alive
    before = libc.mallinfo2().hblkhd
    t = torch.empty(100 << 18)
    grown = libc.mallinfo2().hblkhd - before
    del t
    return grown

outside = mapped()
with memory.reuse_freed_memory():
    inside = mapped()
print(outside, inside, mapped())
"""


def test_freed_memory_stays_in_the_heap_while_training_and_is_mapped_again_after():
    # in a fresh process: glibc's heap is process-wide, and what earlier tests freed (a 100 MB block
    # left free at the top of the heap) would serve the tensor without a mapping
    done = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=120)
    if done.returncode == 3:
        pytest.skip("needs glibc 2.33 or later")
    assert done.returncode == 0, done.stderr
    outside, inside, after = map(int, done.stdout.split())
    assert outside >= 100 << 20  # glibc maps a block this large
    assert inside == 0  # inside, it comes from the heap
    assert after >= 100 << 20  # and afterwards large blocks are mapped again


def test_train_runs_inside_it(tmp_path, corpus, monkeypatch):
    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr(run, "reuse_freed_memory", recording)
    textmill.train(tiny_config(corpus, max_steps=1), tmp_path / "r", progress=False)
    assert entered == [True]
