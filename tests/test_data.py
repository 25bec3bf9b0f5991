import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textmill.config import DataConfig
from textmill.data import TokenStream, chinese_reviews_labelled, embedded_documents, read_documents, split_documents
from textmill.errors import DataError
from textmill.tokenizers import CharTokenizer

from .helpers import SHARED_DATA


def docs(source, **kw):
    return read_documents(DataConfig(source=str(source), **kw))


def test_formats(tmp_path):
    (tmp_path / "a.txt").write_text("whole\nfile\n", encoding="utf-8")
    assert docs(tmp_path / "a.txt") == ["whole\nfile\n"]
    assert docs(tmp_path / "a.txt", format="lines") == ["whole", "file"]
    (tmp_path / "p.jsonl").write_text(json.dumps({"paragraphs": ["床前明月光，", "疑是地上霜。"]}, ensure_ascii=False) + "\n\n")
    assert docs(tmp_path / "p.jsonl", text_field="paragraphs") == ["床前明月光，\n疑是地上霜。"]
    (tmp_path / "t.csv").write_text("id,text\n1,hello\n2,world\n")
    assert docs(tmp_path / "t.csv") == ["hello", "world"]
    (tmp_path / "t.tsv").write_text("text\tlabel\nhi there\tpos\n")
    assert docs(tmp_path / "t.tsv") == ["hi there"]
    pq.write_table(pa.table({"body": ["x y", None, "z"]}), tmp_path / "t.parquet")
    assert docs(tmp_path / "t.parquet", text_field="body") == ["x y", "z"]


def test_directory_reads_every_file_sorted(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    assert docs(tmp_path) == ["first", "second"]


def test_binary_invalid_and_empty_files_are_named(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"abc\x00def")
    with pytest.raises(DataError, match=r"bin.txt looks binary \(NUL byte at offset 3\)"):
        docs(tmp_path / "bin.txt")
    (tmp_path / "gbk.txt").write_bytes("好的".encode("gbk"))
    with pytest.raises(DataError, match=r"gbk.txt is not valid UTF-8 \(byte 0xba at offset 0\)"):
        docs(tmp_path / "gbk.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="holds no text"):
        docs(tmp_path / "empty.txt")
    with pytest.raises(DataError, match="does not exist"):
        docs(tmp_path / "missing.txt")


def test_missing_field_lists_fields(tmp_path):
    (tmp_path / "t.csv").write_text("id,body\n1,hello\n")
    with pytest.raises(DataError, match="no column 'text'; columns: id, body"):
        docs(tmp_path / "t.csv")
    (tmp_path / "t.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="row 1 has no field 'text'; fields: body"):
        docs(tmp_path / "t.jsonl")


def test_split_is_deterministic_and_disjoint():
    text = "abcdefghij" * 10
    assert split_documents([text], 0.1) == ([text[:90]], [text[90:]])
    many = [f"doc {i}" for i in range(50)]
    a = split_documents(many, 0.2, seed=3)
    assert a == split_documents(many, 0.2, seed=3)
    assert len(a[1]) == 10 and not set(a[0]) & set(a[1]) and sorted(a[0] + a[1]) == sorted(many)
    with pytest.raises(DataError, match="too few"):
        split_documents(["x"], 0.1)


def test_token_stream_windows():
    tok = CharTokenizer().train(["abcdef"])
    stream = TokenStream.from_docs(tok, ["abcdef"], context=3, what="training")
    assert stream.tokens.tolist()[0] == tok.bos_id and stream.tokens.tolist()[-1] == tok.eos_id
    (x, y), = list(stream.batches(batch_size=4))
    assert x.shape == (2, 3) and (x[:, 1:] == y[:, :-1]).all()
    with pytest.raises(DataError, match="fewer than one window"):
        TokenStream.from_docs(tok, ["ab"], context=10, what="validation")


def test_embedded_corpora():
    plays = embedded_documents("shakespeare")
    assert len(plays) >= 30 and "\nHAMLET:\n" in "".join(plays) and "**" not in plays[0] and "#" not in plays[0]
    reviews = chinese_reviews_labelled()
    assert len(reviews) > 30000 and {label for _, label in reviews} == {"pos", "neg"}
    with pytest.raises(DataError, match="embedded:shakespeare"):
        embedded_documents("wiki")


@pytest.mark.skipif(not (SHARED_DATA / "chinese_poetry").is_dir(), reason="shared data not present")
def test_real_tang_quatrains():
    poems = docs(SHARED_DATA / "chinese_poetry" / "tang_quatrains.jsonl", text_field="paragraphs")
    assert len(poems) == 14569
