"""ARPA back-off files, the exchange format of KenLM, SRILM and speech toolkits.

Tokens are written as ARPA words: `<bos>` as `<s>`, `<eos>` as `</s>`, `<unk>` as `<unk>`; other
tokens are escaped so that a word never holds whitespace: `\\` -> `\\\\`, space -> `\\s`, tab -> `\\t`,
newline -> `\\n`, carriage return -> `\\r`, any other whitespace character -> `\\u{hex}`. So a
character-level model's space is the word `\\s`, and a word-level token `" cat"` is `\\scat`.
A KenLM or SRILM file of plain words needs no unescaping and imports as it is.

An exported file starts with one comment line, `# textmill tokenizer: {...}`, that holds the run's
tokenizer (KenLM reads `#` lines before `\\data\\` as comments; SRILM skips whatever precedes it),
so importing it back gives the same tokenizer, the same token ids and the same scores.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, TextmillError
from ..files import replacing
from ..loading import load
from ..models.ngram import NEVER, NGramConfig, NGramLM
from ..rundir import RUN_FORMAT
from ..tokenizers import TOKENIZERS, Tokenizer, VocabTokenizer, tokenizer_from_document

_SPECIAL_WORDS = {"<bos>": "<s>", "<eos>": "</s>", "<unk>": "<unk>"}
_ESCAPES = {"\\": "\\\\", " ": "\\s", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESCAPE = re.compile(r"\\(\\|s|t|n|r|u\{[0-9a-f]+\})")
TOKENIZER_COMMENT = "# textmill tokenizer: "


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
    repeated = len(words) - len(set(words))
    if repeated:
        raise DataError(f"{repeated} tokens of this {tokenizer.kind} vocabulary decode to the same text (byte pieces of "
                        "characters), which ARPA words cannot tell apart; train the n-gram model on a char, word or "
                        "whitespace tokenizer to export it")
    V = model.vocab_size
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(TOKENIZER_COMMENT + json.dumps(tokenizer.to_document(), ensure_ascii=False) + "\n")
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


@dataclass
class ArpaFile:
    order: int
    vocab: list[str]  # the unigrams' words, in file order
    grams: dict[int, list[tuple[list[str], float, float]]]  # k -> [(words, log10 prob, log10 back-off)]
    tokenizer: dict[str, Any] | None  # the tokenizer document of a textmill export


def read_arpa(path: str | Path) -> ArpaFile:
    """An ARPA file's n-grams, and the tokenizer a textmill export records in its first comment."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ARPA file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return _parse_arpa(f, path)
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}); is it a binary KenLM model? Pass the .arpa file") from None


def _parse_arpa(f: Any, path: Path) -> ArpaFile:
    grams: dict[int, list[tuple[list[str], float, float]]] = {}
    counts: dict[int, int] = {}
    section, tokenizer = None, None
    for n, raw in enumerate(f, 1):
        line = raw.strip()
        if not line:
            continue
        if section is None and line.startswith("#"):
            if line.startswith(TOKENIZER_COMMENT.strip()):
                try:
                    tokenizer = json.loads(line[len(TOKENIZER_COMMENT.strip()):])
                except json.JSONDecodeError:
                    raise DataError(f"{path}:{n}: the textmill tokenizer comment is damaged; export the run again") from None
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
            try:
                logp, bo = float(parts[0]), float(parts[section + 1]) if len(parts) == section + 2 else 0.0
            except ValueError:
                raise DataError(f"{path}:{n}: the log10 probability or back-off weight is not a number") from None
            if not (math.isfinite(logp) and math.isfinite(bo)):
                raise DataError(f"{path}:{n}: the log10 probability or back-off weight is not finite")
            grams[section].append((parts[1:section + 1], logp, bo))
        else:
            raise DataError(f"{path}:{n}: text outside the \\data\\ and n-gram sections; is this an ARPA file?")
    if not counts or set(counts) != set(grams) or any(len(grams[k]) != c for k, c in counts.items()) \
            or set(counts) != set(range(1, max(counts) + 1)):
        raise DataError(f"{path}: the n-gram counts in \\data\\ do not match the sections; the file is truncated or not ARPA")
    vocab = list(dict.fromkeys(w for words, _, _ in grams[1] for w in words))
    return ArpaFile(max(counts), vocab, grams, tokenizer)


def arpa_to_model(arpa: ArpaFile, tokenizer: Tokenizer, path: str | Path) -> NGramLM:
    """An NGramLM holding the ARPA file's tables over `tokenizer`'s vocabulary (its tokens must cover
    the file's unigrams)."""
    ids = {t: i for i, t in enumerate(_token_strings(tokenizer))}
    missing = [w for w in arpa.vocab if unescape(w) not in ids]
    if missing:
        raise DataError(f"{path}: {len(missing)} words are not in the tokenizer's vocabulary, e.g. {missing[:5]}")
    model = NGramLM(NGramConfig(order=arpa.order, smoothing="backoff"), tokenizer.vocab_size,
                    tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)
    for k in range(1, arpa.order + 1):
        grams = arpa.grams[k]
        rows = np.array([[ids.get(unescape(w), -1) for w in words] for words, _, _ in grams], dtype=np.int64).reshape(-1, k)
        if (rows < 0).any():
            raise DataError(f"{path}: a {k}-gram holds a word that is not among the unigrams; the file is damaged")
        keys = model._pack(rows)
        order_idx = np.argsort(keys)
        logp = np.array([p for _, p, _ in grams])[order_idx]
        bo = np.array([b for _, _, b in grams])[order_idx]
        keys = keys[order_idx]
        if len(np.unique(keys)) != len(keys):
            raise DataError(f"{path}: the {k}-grams section lists an n-gram twice; the file is damaged")
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
    gen = load(run_dir)
    if not isinstance(gen.model, NGramLM):
        raise DataError(f"{run_dir} holds a {gen.info['family']} model; only n-gram models export to ARPA")
    write_arpa(gen.model, gen.tokenizer, path)
    return Path(path)


def import_arpa(path: str | Path, out_dir: str | Path, tokenizer_kind: str = "auto") -> Path:
    """Turn an ARPA file into a run directory usable by `textmill generate` and `textmill eval --data`.

    `auto` takes the tokenizer that a textmill export records, so a round trip keeps every token and
    score; a file from KenLM or SRILM gets a `whitespace` tokenizer over its unigrams. `whitespace`,
    `char` or `word` name the tokenizer for a file without one."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir} exists and is not empty; choose a new --out directory")
    arpa = read_arpa(path)
    recorded = arpa.tokenizer
    if recorded is not None and tokenizer_kind not in ("auto", recorded.get("kind")):
        raise DataError(f"{path} was exported from a run with a {recorded.get('kind')!r} tokenizer; import it with "
                        f"--tokenizer auto (or {recorded.get('kind')}) to score text as that run did")
    if recorded is not None:
        try:
            tokenizer = tokenizer_from_document(recorded)
        except TextmillError:
            raise
        except Exception as e:
            raise DataError(f"{path}: the textmill tokenizer comment is damaged ({type(e).__name__}); export the run again") from None
    else:
        cls = TOKENIZERS.get("whitespace" if tokenizer_kind == "auto" else tokenizer_kind)
        if not issubclass(cls, VocabTokenizer):
            raise DataError(f"an ARPA vocabulary needs a char, word or whitespace tokenizer, not {tokenizer_kind!r}")
        tokens = [unescape(w) for w in arpa.vocab if unescape(w) not in ("<bos>", "<eos>", "<unk>")]
        if cls.kind == "char" and any(len(t) != 1 for t in tokens):
            raise DataError(f"{path} has multi-character words; import it with --tokenizer word or whitespace")
        tokenizer = cls().set_vocab(tokens)
    model = arpa_to_model(arpa, tokenizer, path)
    meta = {"format": RUN_FORMAT, "version": 1, "family": "ngram", "model": model.cfg.model_dump(mode="json"),
            "vocab_size": tokenizer.vocab_size, "imported_from": str(path)}
    with replacing(out_dir) as tmp:  # the run appears whole or not at all
        tmp.mkdir()
        tokenizer.save(tmp / "tokenizer.json")
        model.save(tmp / "model.safetensors")
        (tmp / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return out_dir
