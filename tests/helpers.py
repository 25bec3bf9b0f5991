"""What tests build: tiny corpora, configs, Hugging Face models and tokenizers (from a config, nothing
downloaded), labelled reviews, and a live server on a loopback port. Fixtures are in conftest.py."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

ENGLISH = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n\n"
) * 30
CHINESE = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n" * 20


def tiny_config(corpus: Path, family: str = "gpt", **train: object) -> dict:
    model = ({"family": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 32, "context": 32} if family == "gpt" else
             {"family": "rnn", "cell": family, "n_layer": 2, "n_embd": 16, "hidden": 32, "context": 32})
    return {"model": model, "tokenizer": {"kind": "char"}, "data": {"source": str(corpus)},
            "train": {"max_steps": 30, "batch_size": 8, "eval_every": 10, "eval_batches": 4, "log_every": 5,
                      "warmup_steps": 5, "lr": 3e-3, "threads": 1, **train}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live(models: dict, study: Path | None = None, **settings) -> Iterator[str]:
    """A uvicorn server with `models` (and a study's rating pages) on a loopback port, for the
    duration: yields its base URL."""
    import uvicorn

    from textmill.serve import ServeSettings, create_app

    app = create_app(models, ServeSettings(**settings), study)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def post(url: str, body: bytes | dict, key: str | None = None) -> tuple[int, dict]:
    """POST a JSON body (bytes as they are, to send what a client never would): (status, answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# -- tiny Hugging Face models and tokenizers (transformers builds them from a config) ---------------------------
HF_WORDS = "the a cat dog sat ran on in mat park and then it was happy sad big small red blue".split()
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
CHAT = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}<s>assistant:{% endif %}"


def tiny_tokenizer(chat: bool = False):
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate([*SPECIALS, ":", *HF_WORDS, "user", "assistant", *"abcdefghijklmnopqrstuvwxyz"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>", chat_template=CHAT if chat else None)


PEAKED = 0.3  # larger random weights than the default 0.02: logits far apart, so no greedy step is a near-tie


FOREIGN = {"query_pre_attn_scalar": 12}  # a Gemma 3 option textmill's GPT lacks (27B's query scale): transformers runs it


def tiny_model(arch: str, vocab: int, **options: Any):
    import transformers

    torch.manual_seed(0)
    if arch == "llama":
        cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                       bos_token_id=1, eos_token_id=2, pad_token_id=3, initializer_range=PEAKED)
        return transformers.LlamaForCausalLM(cfg)
    if arch == "gemma3":
        # heads wider than hidden / heads, as Gemma 3's are; a window shorter than the test prompts, so the
        # local layer's window and its own rotary base both count
        options = {"query_pre_attn_scalar": 16, **options}
        cfg = transformers.Gemma3TextConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
                                            sliding_window=6, layer_types=["sliding_attention", "full_attention"],
                                            bos_token_id=1, eos_token_id=2, pad_token_id=3, initializer_range=PEAKED, **options)
        model = transformers.Gemma3ForCausalLM(cfg)
        with torch.no_grad():  # its norms start at 0 (a scale of 1 + 0): random ones check the import's offset
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.normal_(0.0, 0.3)
        return model
    cfg = transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=24, bos_token_id=1,
                                  eos_token_id=2, pad_token_id=3, initializer_range=PEAKED)
    return transformers.GPT2LMHeadModel(cfg)


# -- labelled reviews (synth) --------------------------------------------------------------------------------
GOOD = ["great", "lovely", "excellent", "delicious", "friendly", "wonderful", "superb", "tasty"]
BAD = ["awful", "terrible", "cold", "rude", "bland", "dirty", "horrible", "stale"]
THINGS = ["food", "pizza", "service", "staff", "soup", "coffee", "room", "waiter", "bread", "music"]


def reviews(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label, words = ("positive", GOOD) if i % 2 == 0 else ("negative", BAD)
        a, b = rng.sample(THINGS, 2)
        when = rng.choice(["today", "tonight", "again", "as usual"])
        rows.append((f"the {a} was {rng.choice(words)} and the {b} was {rng.choice(words)} {when}", label))
    return rows




# -- paired data (seq2seq) -----------------------------------------------------------------------------------
GERMAN = {"eins": "one", "zwei": "two", "drei": "three", "vier": "four", "fünf": "five", "hund": "dog", "katze": "cat"}


def pair_config(d, family="seq2seq", **train):
    model = ({"family": "seq2seq", "attention": "bahdanau", "n_embd": 32, "hidden": 64, "context": 16} if family == "seq2seq"
             else {"family": "transformer", "encoder_layers": 1, "decoder_layers": 1, "n_embd": 32, "n_head": 2, "ffn": 64,
                   "context": 16, "dropout": 0.0})
    return {"model": model, "tokenizer": {"kind": "word"},
            "data": {"task": "translation", "source": str(d / "train.de"), "target": str(d / "train.en"), "val_fraction": 0.1},
            "train": {"max_steps": 20, "batch_size": 16, "eval_every": 10, "eval_batches": 2, "log_every": 5,
                      "warmup_steps": 2, "lr": 1e-2, "weight_decay": 0.0, "threads": 1, **train}}
