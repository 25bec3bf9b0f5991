"""Property-based tests (hypothesis): tokenizers round-trip and continuations never merge with their
prompt; the config loader, the data readers and the ARPA reader turn any input into a result or a
textmill error, never a traceback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textmill.config import DataConfig, load_config
from textmill.data.sources import read_documents, read_labelled
from textmill.errors import TextmillError
from textmill.exchange.arpa import import_arpa, read_arpa
from textmill.tokenizers import BOS_ID, BPETokenizer, CharTokenizer, WhitespaceTokenizer, WordTokenizer

EXAMPLES = int(os.environ.get("TEXTMILL_HYPOTHESIS_EXAMPLES", 150))  # more for a deeper search, e.g. 2000
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# text as users write it: letters, CJK, digits, punctuation, spaces and newlines (no special-token markup)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="<>"), max_size=60)
WORDS = st.lists(st.text("abcdefghij", min_size=1, max_size=6), min_size=1, max_size=8)

CORPUS = ["the cat sat on the mat.", "A man standing in the woods, 2024!", "床前明月光，疑是地上霜。", "don't stop\nnow"]
BPE = BPETokenizer(vocab_size=400, min_frequency=1).train(CORPUS)


def trained(kind: str, text: str, prefix_space: bool = False):
    """A tokenizer of `kind` whose vocabulary holds every piece of `text` (BPE: any text, by bytes)."""
    if kind == "bpe":
        return BPE
    cls = {"char": CharTokenizer, "word": WordTokenizer, "whitespace": WhitespaceTokenizer}[kind]
    options = {"prefix_space": prefix_space} if kind == "word" else {}
    return cls(**options).train([*CORPUS, text])


@PROPERTY
@given(text=TEXT, kind=st.sampled_from(["char", "word", "bpe"]))
def test_tokenizers_round_trip_any_text_they_accept(text, kind):
    tok = trained(kind, text)
    assert tok.decode(tok.encode(text)) == text


@PROPERTY
@given(text=TEXT)
def test_whitespace_tokenizer_round_trips_up_to_whitespace(text):
    tok = trained("whitespace", text)
    assert tok.decode(tok.encode(text)) == " ".join(text.split())


@PROPERTY
@given(text=TEXT.filter(lambda t: not t[:1].isspace()))
def test_prefix_space_is_dropped_from_a_text_written_from_its_start(text):
    tok = trained("word", text, prefix_space=True)
    assert tok.decode_continuation([BOS_ID], tok.encode(text)) == text


@PROPERTY
@given(prompt=TEXT, continuation=TEXT, kind=st.sampled_from(["char", "word", "whitespace", "bpe"]))
def test_a_continuation_reads_right_after_its_prompt(prompt, continuation, kind):
    tok = trained(kind, prompt + " " + continuation)
    p, c = tok.encode(prompt, add_bos=True), tok.encode(continuation)
    assert tok.decode(p) + tok.decode_continuation(p, c) == tok.decode(p + c)


@PROPERTY
@given(prompt=WORDS, continuation=WORDS)
def test_whitespace_continuations_never_merge_with_the_prompt(prompt, continuation):
    tok = WhitespaceTokenizer().train([" ".join(prompt + continuation)])
    p, c = tok.encode(" ".join(prompt), add_bos=True), tok.encode(" ".join(continuation))
    assert (" ".join(prompt) + tok.decode_continuation(p, c)).split() == prompt + continuation


YAML_VALUES = st.one_of(st.text(max_size=30), st.sampled_from(["[1, 2", "{a: b}", "null", "- x\n- y", ": :", "!!python/object:os.system",
                                                               "1e400", "-1", "true", "'", "\t", "&a [*a]"]))


@PROPERTY
@given(text=st.one_of(st.text(max_size=200), YAML_VALUES), overrides=st.lists(
    st.tuples(st.sampled_from(["model.family", "train.lr", "data.source", "tokenizer.kind", "x", "model", "train.max_steps.x",
                               "", "a.b.c", "model.n_layer"]), YAML_VALUES).map(lambda kv: f"{kv[0]}={kv[1]}")
    | st.text(max_size=20), max_size=4))
def test_the_config_loader_raises_only_textmill_errors(text, overrides):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path, overrides)
        except TextmillError:
            pass


@PROPERTY
@given(data=st.binary(max_size=300) | TEXT.map(lambda t: t.encode("utf-8")) | st.sampled_from(
    [b'{"text": "a"}\n{"text": 3}\n', b'{"text": ["a", {"b": 1}]}\n', b"text,label\n\"a,b\n", b"[1, 2]\n", b"null\n",
     b'{"text": "x", "label": null}\n', b"text\tlabel\na\n", b"\xef\xbb\xbftext,label\nx,y\n", b"PAR1garbage"]),
       fmt=st.sampled_from(["auto", "text", "lines", "jsonl", "csv", "tsv", "parquet"]), labelled=st.booleans())
def test_the_data_readers_read_or_refuse_any_bytes(data, fmt, labelled):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_bytes(data)
        try:
            if labelled:
                rows = read_labelled(DataConfig(source=str(path), format=fmt, label_field="label"))
                assert all(isinstance(t, str) and isinstance(y, str) for t, y in rows)
            else:
                docs = read_documents(DataConfig(source=str(path), format=fmt))
                assert docs and all(isinstance(d, str) for d in docs)
        except TextmillError:
            pass


ARPA_LINES = st.sampled_from(["\\data\\", "ngram 1=2", "ngram 2=1", "ngram 1=x", "\\1-grams:", "\\2-grams:", "\\3-grams:",
                              "-1.0\t<s>\t-0.5", "-0.5\thello\t-0.2", "-0.3\t</s>", "-0.1\t<s> hello", "-0.2\thello hello",
                              "nan\thello", "-inf\thello", "x\ty\tz", "\\end\\", "", "# a comment", "-1 a b c d e",
                              "# textmill tokenizer: {", "# textmill tokenizer: {\"kind\": \"nope\"}",
                              "-0.1\tunseen </s>", "-0.5\thello\t-0.2"])


@PROPERTY
@given(lines=st.lists(ARPA_LINES | st.text(max_size=20), max_size=14), raw=st.binary(max_size=50))
def test_the_arpa_reader_never_crashes(lines, raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lm.arpa"
        for content in ("\n".join(lines).encode("utf-8"), raw):
            path.write_bytes(content)
            try:
                read_arpa(path)
                import_arpa(path, Path(tmp) / f"run{len(content)}")
            except TextmillError:
                pass
