"""ARPA back-off files, the exchange format of KenLM, SRILM and speech toolkits.

Tokens are written as ARPA words: `<bos>` as `<s>`, `<eos>` as `</s>`, `<unk>` as `<unk>`; other
tokens are escaped so that a word never holds whitespace: `\\` -> `\\\\`, space -> `\\s`, tab -> `\\t`,
newline -> `\\n`, carriage return -> `\\r`, any other whitespace character -> `\\u{hex}`. So a
character-level model's space is the word `\\s`, and a word-level token `" cat"` is `\\scat`.
A KenLM or SRILM file of plain words needs no unescaping and imports as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..tokenizers import Tokenizer
from .ngram import NEVER, NGramConfig, NGramLM

_SPECIAL_WORDS = {"<bos>": "<s>", "<eos>": "</s>", "<unk>": "<unk>"}
_ESCAPES = {"\\": "\\\\", " ": "\\s", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPE = re.compile(r"\\(\\|s|t|n|r|u\{[0-9a-f]+\})")


def escape(token: str) -> str:
    if token in _SPECIAL_WORDS:
        return _SPECIAL_WORDS[token]
    return "".join(_ESCAPES.get(c, f"\\u{{{ord(c):x}}}" if c.isspace() else c) for c in token)


def unescape(word: str) -> str:
    for ours, theirs in _SPECIAL_WORDS.items():
        if word == theirs:
            return ours

    def one(m: re.Match) -> str:
        code = m.group(1)
        return {"\\": "\\", "s": " ", "t": "\t", "n": "\n", "r": "\r"}.get(code) or chr(int(code[2:-1], 16))

    return _UNESCAPE.sub(one, word)


def _token_strings(tokenizer: Tokenizer) -> list[str]:
    return [tokenizer.decode([i], skip_special=False) for i in range(tokenizer.vocab_size)]


def write_arpa(model: NGramLM, tokenizer: Tokenizer, path: str | Path) -> None:
    """Write `model` as an ARPA file (log10 probabilities and back-off weights)."""
    if model.cfg.smoothing == "add_k":
        raise DataError("ARPA files hold back-off models; add-k is not one. Train with model.smoothing=kneser_ney")
    words = [escape(t) for t in _token_strings(tokenizer)]
    V = model.vocab_size
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n\\data\\\n")
        for k in range(1, model.n + 1):
            f.write(f"ngram {k}={len(model.tables[f'keys_{k}'])}\n")
        for k in range(1, model.n + 1):
            f.write(f"\n\\{k}-grams:\n")
            keys, logp, bo = (model.tables[f"{name}_{k}"] for name in ("keys", "logprob", "backoff"))
            ids = np.stack([keys // V ** (k - 1 - j) % V for j in range(k)], 1)
            for row, lp, b in zip(ids.tolist(), logp.tolist(), bo.tolist()):
                gram = " ".join(words[i] for i in row)
                f.write(f"{lp:.7g}\t{gram}\t{b:.7g}\n" if k < model.n else f"{lp:.7g}\t{gram}\n")
        f.write("\n\\end\\\n")
    tmp.replace(path)


def read_arpa(path: str | Path) -> tuple[int, list[str], dict[int, list[tuple[list[str], float, float]]]]:
    """(order, vocabulary in first-seen order, {k: [(words, log10 prob, log10 backoff)]}) of an ARPA file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ARPA file {path} does not exist")
    grams: dict[int, list[tuple[list[str], float, float]]] = {}
    counts: dict[int, int] = {}
    section = None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if line == "\\data\\":
                section = "data"
            elif line == "\\end\\":
                break
            elif m := re.fullmatch(r"\\(\d+)-grams:", line):
                section = int(m.group(1))
                grams[section] = []
            elif section == "data":
                m = re.fullmatch(r"ngram (\d+)\s*=\s*(\d+)", line)
                if not m:
                    raise DataError(f"{path}:{n}: expected 'ngram K=COUNT' in the \\data\\ section")
                counts[int(m.group(1))] = int(m.group(2))
            elif isinstance(section, int):
                parts = line.split()
                if len(parts) not in (section + 1, section + 2):
                    raise DataError(f"{path}:{n}: a {section}-gram line needs a log10 probability, "
                                    f"{section} words and an optional back-off weight")
                bo = float(parts[section + 1]) if len(parts) == section + 2 else 0.0
                grams[section].append((parts[1:section + 1], float(parts[0]), bo))
            else:
                raise DataError(f"{path}:{n}: text outside the \\data\\ and n-gram sections; is this an ARPA file?")
    if not counts or set(counts) != set(grams) or any(len(grams[k]) != c for k, c in counts.items()):
        raise DataError(f"{path}: the n-gram counts in \\data\\ do not match the sections; the file is truncated or not ARPA")
    vocab = list(dict.fromkeys(w for words, _, _ in grams[1] for w in words))
    return max(counts), vocab, grams


def arpa_to_model(path: str | Path, tokenizer: Tokenizer) -> NGramLM:
    """An NGramLM holding the ARPA file's tables over `tokenizer`'s vocabulary (its tokens must cover
    the file's unigrams)."""
    order, vocab, grams = read_arpa(path)
    ids = {t: i for i, t in enumerate(_token_strings(tokenizer))}
    missing = [w for w in vocab if unescape(w) not in ids]
    if missing:
        raise DataError(f"{path}: {len(missing)} words are not in the tokenizer's vocabulary, e.g. {missing[:5]}")
    model = NGramLM(NGramConfig(order=order, smoothing="backoff"), tokenizer.vocab_size,
                    tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)
    for k in range(1, order + 1):
        rows = np.array([[ids[unescape(w)] for w in words] for words, _, _ in grams[k]], dtype=np.int64).reshape(-1, k)
        keys = model._pack(rows)
        order_idx = np.argsort(keys)
        logp = np.array([p for _, p, _ in grams[k]])[order_idx]
        bo = np.array([b for _, _, b in grams[k]])[order_idx]
        keys = keys[order_idx]
        if k == 1:  # every vocabulary entry but padding gets a unigram, as when training
            full = np.arange(tokenizer.vocab_size, dtype=np.int64)
            full = full[full != tokenizer.pad_id]
            full_logp, full_bo = np.full(len(full), NEVER), np.zeros(len(full))
            at = np.searchsorted(full, keys)
            full_logp[at], full_bo[at] = logp, bo
            keys, logp, bo = full, full_logp, full_bo
        model.tables.update({f"keys_{k}": keys, f"counts_{k}": np.zeros(len(keys), dtype=np.int64),
                             f"logprob_{k}": logp, f"backoff_{k}": bo})
    return model


def export_arpa(run_dir: str | Path, path: str | Path) -> Path:
    """Write the n-gram model of a run directory as an ARPA file."""
    from ..train.checkpoint import load

    gen = load(run_dir)
    if not isinstance(gen.model, NGramLM):
        raise DataError(f"{run_dir} holds a {gen.info['family']} model; only n-gram models export to ARPA")
    write_arpa(gen.model, gen.tokenizer, path)
    return Path(path)


def import_arpa(path: str | Path, out_dir: str | Path, tokenizer_kind: str = "whitespace") -> Path:
    """Turn an ARPA file into a run directory usable by `textmill generate` and `textmill eval --data`.

    The tokenizer (`whitespace` for plain KenLM/SRILM files, `char` or `word` for files that textmill
    exported) gets the file's unigrams as its vocabulary."""
    import json

    from ..tokenizers import TOKENIZERS, VocabTokenizer
    from ..train.checkpoint import RUN_FORMAT, atomic_write_text

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir} exists and is not empty; choose a new --out directory")
    cls = TOKENIZERS.get(tokenizer_kind)
    if not issubclass(cls, VocabTokenizer):
        raise DataError(f"an ARPA vocabulary needs a char, word or whitespace tokenizer, not {tokenizer_kind!r}")
    _, vocab, _ = read_arpa(path)
    tokens = [unescape(w) for w in vocab if unescape(w) not in ("<bos>", "<eos>", "<unk>")]
    if tokenizer_kind == "char" and any(len(t) != 1 for t in tokens):
        raise DataError(f"{path} has multi-character words; import it with --tokenizer word or whitespace")
    tokenizer = cls().set_vocab(tokens)
    model = arpa_to_model(path, tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": RUN_FORMAT, "version": 1, "family": "ngram", "model": model.cfg.model_dump(mode="json"),
            "vocab_size": tokenizer.vocab_size, "imported_from": str(path)}
    tokenizer.save(out_dir / "tokenizer.json")
    model.save(out_dir / "model.safetensors")
    atomic_write_text(out_dir / "config.json", json.dumps(meta, indent=2))
    return out_dir
