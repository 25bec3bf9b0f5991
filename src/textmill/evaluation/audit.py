"""Memorization audits of a trained language model (`textmill audit RUN`).

- **Canary exposure** (Carlini et al. 2019): a run trained with `data.canaries` holds random secrets,
  each inserted a chosen number of times. Each canary is ranked by its log-likelihood among random
  candidates of the same format; exposure = -log2 P(a random candidate scores at least as well), read
  from the sampled candidates (at most log2 of their number) and from a skew-normal fit to their
  scores (Carlini's extrapolation, at most log2 of all possible secrets). A canary *leaks* when it
  outscores every sampled candidate; it is *extracted* when greedy decoding from the template's text
  before the secret writes the secret (greedy decoding writes one secret per prompt, so of canaries
  sharing a template and label at most one can be extracted).
- **Membership inference by loss threshold** (Yeom et al. 2018): the AUC of telling training rows from
  held-out rows of the same data by the model's loss on them (0.5: no better than chance), and the true
  positive rate at a 1% false positive rate.
- **Extraction**: samples drawn from the model, and for each the longest run of metric tokens (words,
  and each CJK character) it shares with the training split (evaluation/substrings.py).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DECODER
from ..data.canaries import Canary, random_secret
from ..data.prepare import lm_documents, run_canaries
from ..errors import ConfigError
from ..files import atomic_write_text
from ..loading import load
from ..rundir import read_run_config
from .metrics import metric_tokens
from .substrings import SubstringIndex

WINDOW = 400  # characters: membership inference scores longer documents piece by piece
LEAK_LEN = 8  # metric tokens: a sample sharing this many in a row with a training text counts as reproducing it


# -- scoring -----------------------------------------------------------------------------------------
LOGITS_BUDGET = 2**27  # logits a scoring batch may hold (512 MB in float32): Gemma 3's 262,144-token vocabulary
# made 64 rows of 128 tokens 8.6 GB of logits, and their log-softmax as much again


@torch.no_grad()
def text_nll(gen: Any, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Each text's negative log-likelihood in nats (summed over its tokens) and how many tokens were
    scored, as the model writes it: `<bos> text <eos>`, cut to the model's context. Batches hold at
    most `batch_size` texts and `LOGITS_BUDGET` logits."""
    model, tok = gen.model, gen.tokenizer
    rows = [tok.encode(t, add_bos=True, add_eos=True) for t in texts]
    if hasattr(model, "score_stream"):  # n-gram models
        logp = model.score_stream(np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]))
        counts = np.array([len(r) - 1 for r in rows])
        return np.array([-part.sum() for part in np.split(logp, np.cumsum(counts)[:-1])]), counts
    limit = getattr(model, "max_context", None)
    rows = [r[:limit + 1] if limit else r for r in rows]
    device = next(model.parameters()).device
    out = np.zeros(len(rows))
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]), reverse=True)  # similar lengths share a batch
    vocab = getattr(model, "vocab_size", None) or tok.vocab_size
    while order:
        width = len(rows[order[0]])  # the longest left
        take = max(1, min(batch_size, LOGITS_BUDGET // (width * vocab)))
        idx, order = order[:take], order[take:]
        ids = torch.full((len(idx), width), tok.pad_id, dtype=torch.long)
        for j, i in enumerate(idx):
            ids[j, :len(rows[i])] = torch.tensor(rows[i])
        ids = ids.to(device)
        logits = model(ids[:, :-1])
        nll = F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten(), reduction="none").view(len(idx), -1)
        real = torch.tensor([[k < len(rows[i]) - 1 for k in range(width - 1)] for i in idx], device=device)
        sums = (nll * real).sum(1).tolist()
        for j, i in enumerate(idx):
            out[i] = sums[j]
    return out, np.array([len(r) - 1 for r in rows])


def _check(gen: Any) -> None:
    if getattr(gen.model, "kind", None) != DECODER or not hasattr(gen, "tokenizer"):
        raise ConfigError(f"audits read decoder-only language models (gpt, rnn, ngram, pretrained); this run is a "
                          f"{getattr(gen.model, 'kind', type(gen).__name__)} model")


# -- canaries ----------------------------------------------------------------------------------------
def canary_exposure(gen: Any, canaries: Sequence[Canary], cfg: Any, candidates: int = 2000, seed: int = 0) -> list[dict]:
    """Per canary: its repeats, rank among `candidates` random secrets, exposure (sampled and
    extrapolated), and whether it leaks and is extracted."""
    from scipy import stats

    _check(gen)
    tok = gen.tokenizer
    if tok.unk_id in tok.encode(random_secret(cfg, random.Random(seed)) + cfg.separator + cfg.separator.join(cfg.alphabet)):
        raise ConfigError(f"the run's tokenizer cannot spell every secret of the alphabet {cfg.alphabet!r} (it reads some as "
                          "<unk>), so candidates cannot be ranked; train with a char or bpe tokenizer")
    space = len(cfg.alphabet) ** cfg.length
    rng = random.Random(seed)
    secrets = {random_secret(cfg, rng) for _ in range(candidates)} - {c.secret for c in canaries}
    pool = [cfg.template.replace("{secret}", s) for s in sorted(secrets)]
    head = cfg.template[:cfg.template.index("{secret}")].rstrip()  # a trailing space would be a token of its own
    results = []
    for prefix in sorted({c.prefix for c in canaries}):
        mine = [c for c in canaries if c.prefix == prefix]
        base = text_nll(gen, [prefix + t for t in pool])[0]
        try:
            fit = stats.skewnorm.fit(base)
        except stats.FitError:  # e.g. every candidate scored alike: the sampled rank alone
            fit = None
        scores = text_nll(gen, [prefix + c.text for c in mine])[0]
        completions = gen.generate([prefix + head] * len(mine), strategy="greedy", max_new_tokens=4 * cfg.length + 8)
        for c, nll, written in zip(mine, scores, completions):
            better = int((base <= nll).sum())
            p_fit = float(stats.skewnorm.cdf(nll, *fit)) if fit is not None else (better + 1) / (len(base) + 1)
            results.append({
                "canary": c.text, "secret": c.secret, "label": prefix[len("<label="):-1] if prefix else None, "repeats": c.repeats,
                "rank": better + 1, "of": len(base) + 1,
                "exposure": round(min(math.log2(space), -math.log2(max(p_fit, 1e-300))), 2),
                "exposure_sampled": round(-math.log2((better + 1) / (len(base) + 1)), 2),
                "max_exposure": round(math.log2(space), 2), "leaked": better == 0,
                "extracted": written.replace(" ", "").startswith(c.secret.replace(" ", "")),
            })
    return results


# -- membership inference ----------------------------------------------------------------------------
def membership_inference(gen: Any, members: Sequence[str], non_members: Sequence[str], max_rows: int = 1000,
                         seed: int = 0) -> dict[str, Any]:
    """Loss-threshold membership inference: AUC and TPR at 1% FPR of per-token loss as the score,
    on at most `max_rows` of each side (drawn with `seed`)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    _check(gen)
    rng = random.Random(seed)
    members = [t for t in members if t.strip()]
    non_members = [t for t in non_members if t.strip()]
    if len(members) < 2 or len(non_members) < 2:
        raise ConfigError("membership inference needs at least 2 training and 2 held-out texts")
    a = rng.sample(members, min(max_rows, len(members)))
    b = rng.sample(non_members, min(max_rows, len(non_members)))
    nll, counts = text_nll(gen, a + b)
    per_token = list(nll / np.maximum(counts, 1))
    y = [1] * len(a) + [0] * len(b)
    score = [-x for x in per_token]  # lower loss: more likely a member
    fpr, tpr, _ = roc_curve(y, score)
    return {"auc": round(float(roc_auc_score(y, score)), 4), "tpr_at_1pct_fpr": round(float(np.interp(0.01, fpr, tpr)), 4),
            "members": len(a), "non_members": len(b),
            "member_loss": round(float(np.mean(per_token[:len(a)])), 4),
            "non_member_loss": round(float(np.mean(per_token[len(a):])), 4)}


# -- extraction --------------------------------------------------------------------------------------
def extraction(samples: Sequence[str], training: Sequence[str], leak_len: int = LEAK_LEN, top: int = 5) -> dict[str, Any]:
    """How much of the training text the samples reproduce: per sample the longest shared run of
    metric tokens; the share of samples with a run of at least `leak_len`; the `top` longest runs."""
    index = SubstringIndex([[x.lower() for x in metric_tokens(t)] for t in training])
    found = []
    for s in samples:
        tokens = [x.lower() for x in metric_tokens(s)]
        length, end = index.longest(tokens)
        found.append((length, " ".join(tokens[end - length:end])))
    lengths = [n for n, _ in found] or [0]
    longest = sorted({(n, text) for n, text in found}, reverse=True)[:top]
    return {"samples": len(samples), "median_longest": float(np.median(lengths)), "max_longest": int(max(lengths)),
            "leak_len": leak_len, "share_reproducing": round(sum(n >= leak_len for n in lengths) / max(len(samples), 1), 4),
            "longest": [{"tokens": n, "text": text} for n, text in longest if n]}


# -- the whole audit ---------------------------------------------------------------------------------
@dataclass
class AuditOptions:
    candidates: int = 2000  # random secrets each canary is ranked among
    members: int = 1000  # rows of each side for membership inference
    samples: int = 200  # samples drawn for extraction (0: none)
    max_new_tokens: int = 64
    seed: int = 0


def audit(run_dir: str | Path, options: AuditOptions | None = None) -> dict[str, Any]:
    """Canary exposure (when the run trained with canaries), membership inference and extraction for
    the run in `run_dir`, on the data its config names; written to `audit.json` in the run."""
    o = options or AuditOptions()
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    gen = load(run_dir)
    _check(gen)
    canaries = run_canaries(cfg.data) if cfg.data.canaries is not None else []
    train, val = lm_documents(cfg.data)
    planted = {c.prefix + c.text for c in canaries}
    train = [t for t in train if t not in planted]
    members, non_members = _windows(train, WINDOW), _windows(val, WINDOW)  # long documents: their windows
    report: dict[str, Any] = {"run": str(run_dir)}
    if canaries:
        report["canaries"] = canary_exposure(gen, canaries, cfg.data.canaries, o.candidates, o.seed)
    report["membership"] = membership_inference(gen, members, non_members, o.members, o.seed)
    if o.samples:
        samples = gen.generate([""] * o.samples, max_new_tokens=o.max_new_tokens, seed=o.seed)
        report["extraction"] = extraction(samples, [_strip_label(t) for t in train])

    atomic_write_text(run_dir / "audit.json", json.dumps(report, ensure_ascii=False, indent=1))
    return report


def _windows(docs: list[str], size: int) -> list[str]:
    """Documents up to `size` characters as they are; longer ones cut into pieces of `size` (a last
    piece under half of it is left out)."""
    return [d[i:i + size] for d in docs for i in range(0, len(d), size) if len(d) <= size or len(d[i:i + size]) >= size // 2]


def _strip_label(text: str) -> str:
    return text.split(">", 1)[1] if text.startswith("<label=") and ">" in text else text
