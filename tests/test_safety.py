"""PII detection and redaction, English and Chinese: the checksums, both labelled sets at the issue's
targets, the four actions, and `textmill redact` on every format it reads, with bad input refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textmill.cli import app
from textmill.errors import TextmillError
from textmill.safety import Redactor, detect, redact_file
from textmill.safety.evaluation import read_marked, score
from textmill.safety.pii import _card, _cn_id, _iban, luhn

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def marked(name: str) -> list[str]:
    return [line for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


def test_checksums():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert _card("3714 496353 98431") and not _card("1234 5678 9012 3456")  # valid Luhn needs a network prefix too
    assert _cn_id("51010720010101234X") and not _cn_id("51010720010101234Y") and not _cn_id("110105199013071239")  # month 13
    assert _iban("GB82 WEST 1234 5698 7654 32") and not _iban("GB82 WEST 1234 5698 7654 33")


def test_marked_lines_give_text_and_spans():
    text, spans = read_marked("Call ⟦PHONE|555-0100⟧ or mail ⟦EMAIL|a@b.co⟧.")
    assert text == "Call 555-0100 or mail a@b.co." and spans == [("PHONE", 5, 13), ("EMAIL", 22, 28)]


@pytest.mark.parametrize("name", ["pii.txt", "pii_test.txt"])
def test_every_type_meets_the_targets_on_the_labelled_sets(name):
    result = score(marked(name))
    errors = result.pop("_errors")
    for kind, r in result.items():
        assert r["precision"] >= 0.90 and r["recall"] >= 0.95, (kind, r, errors)


def test_context_separates_phones_from_order_numbers():
    assert [s.type for s in detect("Call me on 13812345678 tonight")] == ["PHONE"]
    assert detect("订单号13812345678已发货") == [] and detect("Order 2023110455 shipped") == []
    assert [s.type for s in detect("电话 2023110455")] == ["PHONE"]  # a bare run of digits after a phone word


def test_actions():
    text = "Mail ann@example.com or call +1 415 555 0132; again: ann@example.com."
    assert Redactor("mask")(text) == "Mail <EMAIL> or call <PHONE>; again: <EMAIL>."
    fake = Redactor("pseudonym", secret="k")(text)
    first, second = fake.split("again: ")
    assert "ann@" not in fake and first.split()[1] == second.rstrip(".")  # the same value, the same fake
    assert Redactor("pseudonym", secret="other")(text) != fake  # keyed
    assert [c.isdigit() for c in fake.split("call ")[1][:15]] == [c.isdigit() for c in "+1 415 555 0132"]  # the shape kept
    hashed = Redactor("hash")(text)
    assert hashed.count("<EMAIL:") == 2 and len(set(hashed.split("<EMAIL:")[1:][0][:8])) > 1
    assert Redactor("drop")(text) is None and Redactor("drop")("nothing here") == "nothing here"
    assert Redactor("mask", types=["email"])(text) == "Mail <EMAIL> or call +1 415 555 0132; again: <EMAIL>."
    assert Redactor("mask")("我叫王小明，电话13812345678。") == "我叫<NAME>，电话<PHONE>。"
    with pytest.raises(TextmillError, match="unknown PII type"):
        Redactor("mask", types=["PASSPORT"])
    with pytest.raises(TextmillError, match="unknown redaction action"):
        Redactor("blur")


def test_redact_reads_lines_jsonl_and_csv(tmp_path):
    lines = tmp_path / "rows.txt"
    lines.write_text("call 13812345678\nno pii here\n\nmail a@example.com\n", encoding="utf-8")
    res = runner.invoke(app, ["redact", str(lines), "--out", str(tmp_path / "out.txt")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "call <PHONE>\nno pii here\n\nmail <EMAIL>\n"
    assert "4 rows read, 4 written" in res.output and "1 EMAIL, 1 PHONE" in res.output
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"label": "x", "text": t}) + "\n" for t in ["hi a@example.com", "clean"]), encoding="utf-8")
    counts = redact_file(rows, tmp_path / "out.jsonl", Redactor("drop"))
    assert counts["rows"] == 2 and counts["written"] == 1
    assert [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [{"label": "x", "text": "clean"}]
    table = tmp_path / "rows.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "review"], ["1", "great, call 415-555-0111"], ["2", "fine"]])
    redact_file(table, tmp_path / "out.csv", Redactor("mask"), text_field="review")
    assert list(csv.reader(open(tmp_path / "out.csv", encoding="utf-8"))) == [["id", "review"], ["1", "great, call <PHONE>"],
                                                                              ["2", "fine"]]


def test_bad_input_is_refused_and_nothing_is_half_written(tmp_path):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02")
    res = runner.invoke(app, ["redact", str(binary), "--out", str(tmp_path / "o.txt")])
    assert res.exit_code == 2 and "binary" in res.output and not (tmp_path / "o.txt").exists()
    src = tmp_path / "in.txt"
    src.write_text("a@example.com\n", encoding="utf-8")
    existing = tmp_path / "keep.txt"
    existing.write_text("mine", encoding="utf-8")
    res = runner.invoke(app, ["redact", str(src), "--out", str(existing)])
    assert res.exit_code == 2 and "exists" in res.output and existing.read_text() == "mine"
    res = runner.invoke(app, ["redact", str(src), "--out", str(src)])
    assert res.exit_code == 2 and "input file" in res.output and src.read_text() == "a@example.com\n"
    res = runner.invoke(app, ["redact", str(src), "--out", str(tmp_path / "o.txt"), "--type", "passport"])
    assert res.exit_code == 2 and "unknown PII type" in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    res = runner.invoke(app, ["redact", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output and not (tmp_path / "o.jsonl").exists()


def test_an_output_in_a_missing_directory_is_created_and_named(tmp_path):
    """One rule for every command's outputs (files.py): missing parent directories are created, and the
    command says where it wrote."""
    src = tmp_path / "in.txt"
    src.write_text("mail me at ann@example.com\n", encoding="utf-8")
    target = tmp_path / "new" / "dir" / "out.txt"
    res = runner.invoke(app, ["redact", str(src), "--out", str(target)])
    assert res.exit_code == 0, res.output
    assert target.read_text(encoding="utf-8") == "mail me at <EMAIL>\n" and str(target) in res.output.replace("\n", "")


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv", ".tsv"])
def test_an_empty_input_is_no_rows_in_every_format(tmp_path, suffix):
    src = tmp_path / f"empty{suffix}"
    src.write_text("", encoding="utf-8")
    counts = redact_file(src, tmp_path / f"out{suffix}", Redactor("mask"))
    assert counts["rows"] == 0 and counts["written"] == 0
    assert (tmp_path / f"out{suffix}").read_text(encoding="utf-8") == ""


@pytest.mark.parametrize("text, found", [
    ("mail bo.lin[at]example[dot]org please", [("EMAIL", "bo.lin[at]example[dot]org")]),
    ("ping sam dot ray at example dot com today", [("EMAIL", "sam dot ray at example dot com")]),
    ("we meet at home at six", []),  # an "at" with no "dot" after it is no address
    ("see icon@2x.png and banner@3x.jpg", []),  # retina file names, not addresses
    ("invoice 4000009999998886 is due", []),  # Luhn-valid, but after invoice
    ("发票号码 13987654321", []),  # eleven digits after 发票号码: the invoice outweighs the number
    ("the UK desk: 07911 654321", [("PHONE", "07911 654321")]),
    ("the kit number 456 78 9012", []),  # an SSN's digits without its name
    ("赵磊和李娜是同事", [("NAME", "赵磊"), ("NAME", "李娜")]),  # a well-known name joined to another by 和
    ("李娜女士的包裹到了", [("NAME", "李娜")]),  # or with an honorific: a private person after all
    ("网球明星李娜赢了比赛", []),  # the public figure, named as such
    ("李子和桃子都熟了", []),
])
def test_written_out_and_disguised_forms(text, found):
    assert [(s.type, s.text) for s in detect(text)] == found
