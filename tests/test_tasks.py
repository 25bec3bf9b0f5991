import json
import logging

import pytest

from textmill.config import DataConfig, load_config
from textmill.data.datasets import IGNORE, ChatDataset, PairDataset, fit_chat
from textmill.data.keywords import extract_keywords, textrank_scores
from textmill.data.tasks import build_task
from textmill.errors import ConfigError, DataError
from textmill.tokenizers import WordTokenizer

from .helpers import SHARED_DATA, tiny_tokenizer


def task(**kw):
    return build_task(DataConfig(**{"source": "unused", **kw}))


def test_parallel_files_and_their_misalignment(tmp_path, caplog):
    (tmp_path / "a.de").write_text("Ein Hund.\n\nZwei Katzen.\nDrei.\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("A dog.\nEmpty source.\nTwo cats.\n\n", encoding="utf-8")
    t = task(task="translation", target=str(tmp_path / "a.en"))
    with caplog.at_level(logging.WARNING):
        pairs = t.pairs(str(tmp_path / "a.de"), str(tmp_path / "a.en"))
    assert pairs == [("Ein Hund.", "A dog."), ("Zwei Katzen.", "Two cats.")]
    assert "skipped 2 of 4 pairs with an empty source or target" in caplog.text
    (tmp_path / "b.en").write_text("A dog.\nTwo cats.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"misaligned: .*a.de has 4 lines but .*b.en has 2"):
        t.pairs(str(tmp_path / "a.de"), str(tmp_path / "b.en"))


def test_tables_by_name_and_by_column(tmp_path):
    (tmp_path / "cmn.txt").write_text("\ufeffHi.\t嗨。\tCC-BY\nRun.\t跑。\tCC-BY\n", encoding="utf-8")
    t = task(task="translation", format="tsv", source_field=1, target_field=0)
    assert t.pairs(str(tmp_path / "cmn.txt")) == [("嗨。", "Hi."), ("跑。", "Run.")]
    (tmp_path / "s.jsonl").write_text(json.dumps({"article": "Long text. More.", "summary": "Short."}) + "\n")
    assert task(task="summarization").pairs(str(tmp_path / "s.jsonl")) == [("Long text. More.", "Short.")]
    with pytest.raises(DataError, match="row 1 has no field 'body'; fields: article, summary"):
        task(task="summarization", source_field="body").pairs(str(tmp_path / "s.jsonl"))
    (tmp_path / "plain.txt").write_text("no target here\n")
    with pytest.raises(DataError, match="give data.target"):
        task(task="translation").pairs(str(tmp_path / "plain.txt"))


def test_dialogue_pairs_windows_and_markers(tmp_path):
    (tmp_path / "d.txt").write_text("Hi . __eou__ Hello ! __eou__ How are you ? __eou__ Fine . __eou__\n")
    t = task(task="dialogue", dialogue={"history_turns": 2})
    pairs = t.pairs(str(tmp_path / "d.txt"))
    assert [reply for _, reply in pairs] == ["Hello !", "How are you ?", "Fine ."]
    assert pairs[2][0] == "Hello !\nHow are you ?"  # the two most recent turns
    assert t.format_source(pairs[2][0]) == "<bot> Hello ! <user> How are you ?"
    assert t.format_source("a\nb\nc") == "<bot> b <user> c"
    assert t.keep == "end" and t.control_tokens == ("<user>", "<bot>")
    plain = task(task="dialogue", dialogue={"speaker_markers": False})
    assert plain.format_source("a\nb") == "a <sep> b" and plain.control_tokens == ("<sep>",)
    rows = [{"turns": ["hi", "hello"]}, {"turns": [{"role": "user", "content": "q?"}, {"role": "assistant", "content": "a."}]}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert task(task="dialogue", text_field="turns").pairs(str(tmp_path / "d.jsonl")) == [("hi", "hello"), ("q?", "a.")]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"turns": "not a list"}) + "\n")
    with pytest.raises(DataError, match="must be a list of turns"):
        task(task="dialogue", text_field="turns").pairs(str(tmp_path / "bad.jsonl"))


def test_keywords_in_text_order_english_and_chinese():
    texts = ["The quick brown fox jumps over the lazy dog", "The dog sleeps under the old tree", "A fox and a dog"]
    tfidf = extract_keywords(texts, "tfidf", 3)
    assert [len(k) for k in tfidf] == [3, 3, 2]  # "A fox and a dog" has two non-stop words
    assert "The" not in tfidf[0] and tfidf[0] == sorted(tfidf[0], key=texts[0].index)  # stop words out, text order
    assert "dog" not in tfidf[0]  # in every text: the lowest idf
    spring = "春天来了，春天的花开了，春天的风很暖，花园里的孩子在奔跑。"
    for method in ("tfidf", "textrank"):
        zh = extract_keywords([spring], method, 3)[0]
        assert len(zh) == 3 and zh[0] == "春天" and "的" not in zh  # the recurring word, function words out
    scores = textrank_scores(["a", "b", "a", "c", "a"])
    assert max(scores, key=scores.get) == "a" and sum(scores.values()) == pytest.approx(1.0)


def test_keywords_task_makes_pairs_from_plain_text(tmp_path):
    (tmp_path / "c.txt").write_text("the cat sat on the warm mat\nthe dog ran in the green park\n")
    t = task(task="keywords", format="lines", keywords={"count": 2})
    pairs = t.pairs(str(tmp_path / "c.txt"))
    assert [target for _, target in pairs] == ["the cat sat on the warm mat", "the dog ran in the green park"]
    assert all(len(source.split()) == 2 for source, _ in pairs)
    assert t.format_source("moon, river，山、 sea") == "moon river 山 sea"


def test_sources_are_cut_at_the_end_the_task_keeps(caplog):
    tok = WordTokenizer().train(["one two three four five six"])
    pairs = [("one two three four five six", "one two")]
    with caplog.at_level(logging.WARNING):
        start, stats = PairDataset.encode(pairs, tok, tok, max_source_len=4, max_target_len=8, keep="start")
    assert tok.decode(start.sources[0]) == "one two three" and start.sources[0][-1] == tok.eos_id
    assert stats["sources_cut"] == 1 and "cut 1 of 1 sources to model.max_source_len=4" in caplog.text
    end, _ = PairDataset.encode(pairs, tok, tok, max_source_len=4, max_target_len=1, keep="end")
    assert tok.decode(end.sources[0]) == " four five six"
    assert end.targets[0] == [tok.bos_id, tok.encode("one")[0]]  # cut to context + 1


def test_pair_batches_are_padded_and_cover_the_length_range():
    tok = WordTokenizer().train(["a b c d e f g h"])
    pairs = [(" ".join("abcdefgh"[:n]), "a") for n in range(1, 9)]
    data, _ = PairDataset.encode(pairs, tok, tok, max_source_len=20, max_target_len=5)
    b = data.batch([0, 7])
    assert b.src.shape == (2, 9) and b.src_mask.sum().item() == 2 + 9 and b.tgt_out[:, -1].tolist() == [tok.eos_id] * 2
    spread = list(data.batches(2, max_batches=2))
    assert spread[0].src.shape[1] < spread[1].src.shape[1]  # shortest and longest, not the two shortest


def test_tasks_as_chats():
    """A chat fine-tune reads a source as the task's messages: the instruction and the source from the
    user; a dialogue's turns alternate, the last the user's, the instruction the system message."""
    assert task(task="summarization").messages(" An article. ") == [
        {"role": "user", "content": "Summarize this article in a few sentences.\n\nAn article."}]
    assert task(task="translation", instruction="Into French:").messages("Hi")[0]["content"] == "Into French:\n\nHi"
    turns = task(task="dialogue", dialogue={"history_turns": 2}, instruction="Be brief.").messages("a\nb\nc")
    assert turns == [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "b"},
                     {"role": "user", "content": "c"}]
    assert task(task="dialogue").messages("x")[0] == {"role": "user", "content": "x"}


def chat_tokenizer():
    from textmill.tokenizers.hf import HFTokenizer

    return HFTokenizer.from_transformers(tiny_tokenizer(chat=True))


def test_chat_rows_learn_the_reply_only_and_cut_the_source():
    tok = chat_tokenizer()
    t = task(task="summarization", instruction="a")
    data, stats = ChatDataset.encode([("the cat sat on the mat", "a dog ran")], t, tok, context=32)
    prompt = tok.encode(tok.chat_prompt(t.messages("the cat sat on the mat")))
    reply = tok.encode(" a dog ran") + [tok.eos_id]
    assert data.rows == [prompt + reply] and stats["sources_cut"] == 0
    batch = data.batch([0])
    assert batch.inputs[0].tolist() == (prompt + reply)[:-1]
    assert batch.targets[0].tolist() == [IGNORE] * (len(prompt) - 1) + reply and batch.n_tokens == len(reply)
    # too long for the context: the article keeps its start, the reply stays whole
    long_source = "the cat sat on the mat and then it was happy " * 4
    data, stats = ChatDataset.encode([(long_source, "a dog ran")], t, tok, context=24)
    assert stats["sources_cut"] == 1 and len(data.rows[0]) <= 25 and data.rows[0][-len(reply):] == reply
    messages, cut = fit_chat(tok, t, long_source, 20)
    assert cut and long_source.startswith(messages[0]["content"].split("\n\n")[1].strip())
    d = task(task="dialogue")  # a dialogue keeps its end: the turn the reply answers
    messages, cut = fit_chat(tok, d, "the cat sat on the mat and then it was happy\na dog ran", 12)
    assert cut and messages[-1] == {"role": "user", "content": "a dog ran"}
    with pytest.raises(DataError, match="raise model.context"):
        fit_chat(tok, t, long_source, 3)
    with pytest.raises(DataError, match="no chat template: start from an instruct model"):
        from textmill.tokenizers.hf import HFTokenizer

        ChatDataset.encode([("a", "b")], t, HFTokenizer.from_transformers(tiny_tokenizer()), context=32)


def test_config_checks_that_family_and_task_fit(tmp_path):
    base = {"tokenizer": {"kind": "char"}, "data": {"source": "x", "task": "translation", "target": "y"}}
    with pytest.raises(ConfigError, match="needs an encoder-decoder family.*or a gpt run fine-tuned from an instruct"):
        load_config({**base, "model": {"family": "gpt"}})
    chat = load_config({**base, "model": {"family": "gpt"}, "train": {"init_from": "embedded:smollm2-135m-instruct"}})
    assert chat.data.task == "translation"  # a chat fine-tune
    with pytest.raises(ConfigError, match="data.instruction is what a chat fine-tune"):
        load_config({**base, "model": {"family": "transformer"}, "data": {**base["data"], "instruction": "Translate."}})
    with pytest.raises(ConfigError, match="a chat fine-tune reads both sides with its base's tokenizer"):
        load_config({**base, "model": {"family": "gpt"}, "source_tokenizer": {"kind": "char"},
                     "train": {"init_from": "embedded:smollm2-135m-instruct"}})
    with pytest.raises(ConfigError, match="maps a source text to a target text"):
        load_config({**base, "model": {"family": "transformer"}, "data": {"source": "x"}})
    with pytest.raises(ConfigError, match="target.*set task to translation or summarization"):
        load_config({**base, "model": {"family": "gpt"}, "data": {"source": "x", "target": "y"}})
    with pytest.raises(ConfigError, match="share_embeddings needs one vocabulary"):
        load_config({**base, "model": {"family": "transformer"}, "source_tokenizer": {"kind": "char"}})
    with pytest.raises(ConfigError, match=r"data.dialogue.history_turn: unknown key; allowed here: history_turns"):
        load_config({**base, "model": {"family": "seq2seq"}, "data": {"source": "x", "task": "dialogue",
                                                                     "dialogue": {"history_turn": 2}}})
    with pytest.raises(ConfigError, match="source_tokenizer.kindd: unknown key; allowed here: control_tokens"):
        load_config({**base, "model": {"family": "seq2seq"}, "source_tokenizer": {"kindd": "char"}})
    with pytest.raises(ConfigError, match="attention: Input should be 'none', 'bahdanau'"):
        load_config({**base, "model": {"family": "seq2seq", "attention": "luong"}})


@pytest.mark.skipif(not (SHARED_DATA / "dailydialog").is_dir(), reason="needs ../shared/data")
def test_shared_dialogue_and_translation_data():
    dd = task(task="dialogue").pairs(str(SHARED_DATA / "dailydialog" / "dialogues_validation.txt"))
    assert len(dd) == 8069 - 1000  # every utterance but each dialogue's first is a reply
    mt = task(task="translation").pairs(str(SHARED_DATA / "multi30k" / "val.de"), str(SHARED_DATA / "multi30k" / "val.en"))
    assert len(mt) == 1014
