import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textmill.config import TokenizerConfig
from textmill.errors import ConfigError
from textmill.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, build_tokenizer, load_tokenizer

from .helpers import CHINESE, ENGLISH

TEXT = ENGLISH[:2000] + CHINESE + "  tabs\tand  double  spaces, it's 2024!\n"


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_round_trip_english_and_chinese(kind, tmp_path):
    tok = build_tokenizer(TokenizerConfig(kind=kind, vocab_size=600, control_tokens=["<label=pos>"]), [TEXT])
    for text in (ENGLISH[:2000], CHINESE, TEXT):  # in-vocabulary text (word-level maps unseen words to <unk>)
        assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert type(again) is type(tok) and again.encode(TEXT) == tok.encode(TEXT) and again.vocab_size == tok.vocab_size


@pytest.mark.parametrize("cls", [CharTokenizer, WordTokenizer, BPETokenizer])
def test_special_and_control_tokens(cls):
    tok = cls(control_tokens=["<label=pos>"]).train([TEXT])
    ids = tok.encode("<label=pos>Speak", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[1] == tok.special_id("<label=pos>") == 4 and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "Speak"
    assert tok.decode(ids, skip_special=False) == "<bos><label=pos>Speak<eos>"
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)


@pytest.mark.parametrize("cls", [CharTokenizer, WordTokenizer, BPETokenizer])
def test_training_text_between_control_tokens_is_all_the_vocabulary_sees(cls):
    """Labelled documents start with `<label=X>`: its characters must not become tokens (an n-gram
    model's smoothing would then write them)."""
    tok = cls(control_tokens=["<label=zz>"]).train(["<label=zz>ab ab", "<label=zz>ba"] * 20)
    pieces = {tok.decode([i]) for i in range(len(tok.specials), tok.vocab_size)}
    if cls is BPETokenizer:  # byte-level BPE starts from all 256 bytes; no merge may hold the token's characters
        pieces = {p for p in pieces if len(p) > 1}
    assert not {p for p in pieces if set(p) & set("<=>z")}


def test_reserved_control_token_rejected():
    with pytest.raises(ConfigError, match="reserved"):
        CharTokenizer(control_tokens=["<eos>"])


def test_word_split_cjk_and_latin():
    tok = WordTokenizer()
    assert tok.split("Hello, world's end. 床前明月光") == ["Hello", ",", " world's", " end", ".", " ", "床", "前", "明", "月", "光"]
    assert tok.split("a  b\n") == ["a", " ", " b", "\n"]


def test_word_jieba_segments_chinese():
    pytest.importorskip("jieba")
    tok = WordTokenizer(segmenter="jieba").train(["我们在北京大学学习。"])
    assert "北京大学" in tok.split("我们在北京大学学习。")
    assert tok.decode(tok.encode("我们在北京大学学习。")) == "我们在北京大学学习。"


def test_unknown_symbols_map_to_unk():
    tok = CharTokenizer().train(["abc"])
    assert tok.encode("abz") == [tok.stoi["a"], tok.stoi["b"], tok.unk_id]


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=0, max_size=80))
def test_bpe_round_trips_any_text(text):
    """A special token's spelling in a text is read as that token (how `<label=X>` prompts work), which
    plain decoding leaves out: hypothesis draws the code's own constants, `<pad>` among them."""
    assert BPE.decode(BPE.encode(text), skip_special=False) == text
    if not any(s in text for s in BPE.specials):
        assert BPE.decode(BPE.encode(text)) == text


BPE = BPETokenizer(vocab_size=400).train([TEXT])


def test_whitespace_decoding_keeps_words_apart_around_special_tokens():
    from textmill.tokenizers import WhitespaceTokenizer

    tok = WhitespaceTokenizer().train(["the pizza was great"])
    ids = tok.encode("i loved the pizza")  # "i" and "loved" are unknown
    assert tok.decode(ids) == "the pizza"
    assert tok.decode(ids, skip_special=False) == "<unk> <unk> the pizza"
    assert tok.decode(tok.encode("the <unk> pizza")) == "the pizza"


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_prefix_space_gives_a_first_word_its_mid_sentence_tokens(kind, tmp_path):
    tok = build_tokenizer(TokenizerConfig(kind=kind, vocab_size=600, control_tokens=["<label=pos>"], prefix_space=True), [TEXT])
    citizen = tok.encode("Citizen")
    assert citizen == tok.encode(" Citizen") == tok.encode("First Citizen")[-len(citizen):] == tok.encode("<label=pos>Citizen")[1:]
    assert tok.decode(citizen) == " Citizen"  # generation drops the space from a text written from its start
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("Citizen") == citizen
    plain = build_tokenizer(TokenizerConfig(kind=kind, vocab_size=600), [TEXT])
    assert plain.encode("Citizen") != plain.encode("First Citizen")[-len(plain.encode("Citizen")):]


def test_prefix_space_is_refused_where_words_carry_no_space():
    with pytest.raises(ValueError, match="prefix_space is for word and bpe"):
        TokenizerConfig(kind="char", prefix_space=True)
