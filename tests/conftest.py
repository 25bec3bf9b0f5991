"""Fixtures shared by the test modules: tiny corpora and a tiny trained run, built in the test session
(nothing downloaded). What tests build lives in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import textmill

from .helpers import ENGLISH, reviews, tiny_config


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(ENGLISH, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, corpus) -> Path:
    run = tmp_path_factory.mktemp("runs") / "gpt"
    textmill.train(tiny_config(corpus), run)
    return run


@pytest.fixture
def labelled(tmp_path) -> Path:
    """160 labelled reviews in a label<TAB>text file."""
    path = tmp_path / "reviews.txt"
    path.write_text("".join(f"{label}\t{text}\n" for text, label in reviews(160)), encoding="utf-8")
    return path
