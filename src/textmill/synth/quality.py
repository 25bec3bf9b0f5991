"""The quality report's measurements: does the synthetic data help, is it like the real data, is it
diverse, does it leak the training texts?

- utility: a classifier (TF-IDF + logistic regression, or on request the sentence CNN) trained on real only, real + synthetic and
  synthetic only, scored on the held-out real texts; each setting over `seeds` bootstrap resamples of
  its training set, reported as mean and 95% t-interval, and the gain of real + synthetic over real
  paired by seed, overall and in each label's F1;
- fidelity: a classifier two-sample test (cross-validated ROC AUC of real vs synthetic on balanced
  sets: 0.5 means the classifier cannot tell them apart; the real side is the held-out texts, because
  a training text and its edits in different folds would push the AUC below 0.5), the Wasserstein distance between length
  distributions (and both histograms) and the Jensen-Shannon divergence between unigram distributions;
- diversity: distinct-1/2/3, Self-BLEU-4 (Texygen's definition) and the unique ratio, for the
  synthetic and the real texts side by side;
- privacy: exact copies of training texts, n-gram overlap with the most similar training text, and
  the longest common substring (characters) with any training text;
- fluency: the median per-token loss of a sample of real and of synthetic texts under the language's
  pretrained model (SmolLM2; Gemma 3 for Chinese), and of each generator's rows: word salad scores
  far above the real rows, fluent rows near or below them; from the same forward pass, a 2-D map of
  the model's features of those rows (principal components of both sides together), where synthetic
  rows bunched in one corner show mode collapse and rows off the real cloud show drift;
- examples: for each label a few real and synthetic rows, each synthetic one beside its nearest
  training row (cosine similarity of TF-IDF vectors, 1.0 for the same words).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.metrics.pairwise import linear_kernel
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ..evaluation.metrics import distinct_n, metric_tokens, self_bleu
from ..evaluation.substrings import SubstringIndex
from .classify import ClassifierKind, text_classifier, tfidf_features
from .filters import TrainingOverlap, units

Rows = Sequence[tuple[str, str]]


def mean_ci(values: Sequence[float]) -> dict[str, float]:
    """Mean and the half-width of its 95% t-interval."""
    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": half}


def predictions(train: Rows, test: Rows, chinese: bool, seed: int = 0,
                classifier: ClassifierKind = "tfidf") -> tuple[list[str], Any]:
    """(the true labels of `test`, the classifier's labels for it after training on `train`)."""
    model = text_classifier(chinese, seed, classifier).fit([t for t, _ in train], [y for _, y in train])
    return [y for _, y in test], model.predict([t for t, _ in test])


def accuracy_f1(truth: Sequence[str], pred: Sequence[str]) -> tuple[float, float]:
    """Accuracy and macro-F1 (%)."""
    return 100 * accuracy_score(truth, pred), 100 * f1_score(truth, pred, average="macro")


def classifier_scores(train: Rows, test: Rows, chinese: bool, seed: int = 0, classifier: ClassifierKind = "tfidf") -> tuple[float, float]:
    """Accuracy and macro-F1 (%) on `test` of the classifier trained on `train`."""
    return accuracy_f1(*predictions(train, test, chinese, seed, classifier))


def utility(train: Rows, heldout: Rows, synthetic: Rows, chinese: bool, seeds: int = 5,
            classifier: ClassifierKind = "tfidf") -> dict[str, Any]:
    settings = {"real": list(train), "real+synthetic": list(train) + list(synthetic), "synthetic": list(synthetic)}
    labels = sorted({y for _, y in heldout})
    scores: dict[str, dict[str, list[float]]] = {}
    per_label: dict[str, list[np.ndarray]] = {}
    for name, rows in settings.items():
        acc, f1, by_label = [], [], []
        for seed in range(seeds):
            rng = random.Random(seed)
            sample = [rows[rng.randrange(len(rows))] for _ in rows]
            if len({y for _, y in sample}) < 2:
                continue
            truth, pred = predictions(sample, heldout, chinese, seed, classifier)
            for values, value in zip((acc, f1), accuracy_f1(truth, pred)):
                values.append(value)
            by_label.append(100 * f1_score(truth, pred, labels=labels, average=None, zero_division=0))
        scores[name], per_label[name] = {"accuracy": acc, "macro_f1": f1}, by_label
    out: dict[str, Any] = {"classifier": classifier, "seeds": seeds, "test_rows": len(heldout),
                           "settings": {k: {m: mean_ci(v) if v else None for m, v in s.items()} | {"runs": s}
                                        for k, s in scores.items()}}
    real, both = scores["real"], scores["real+synthetic"]
    paired = bool(real["accuracy"]) and len(real["accuracy"]) == len(both["accuracy"])
    out["gain"] = {m: mean_ci([b - a for a, b in zip(real[m], both[m])]) for m in ("accuracy", "macro_f1") if paired}
    out["gain_by_label"] = {label: mean_ci([b[i] - a[i] for a, b in zip(per_label["real"], per_label["real+synthetic"])])
                            for i, label in enumerate(labels)} if paired else {}
    return out


def two_sample_auc(real: Sequence[str], synthetic: Sequence[str], chinese: bool, seed: int = 0) -> float | None:
    """Cross-validated AUC of a classifier telling real from synthetic texts (balanced sets)."""
    n = min(len(real), len(synthetic))
    if n < 10:
        return None
    rng = random.Random(seed)
    texts = rng.sample(list(real), n) + rng.sample(list(synthetic), n)
    y = [0] * n + [1] * n
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    p = cross_val_predict(text_classifier(chinese, seed), texts, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def _js_divergence(a: Counter[str], b: Counter[str]) -> float:
    keys = list(set(a) | set(b))
    p = np.array([a[k] for k in keys], dtype=float)
    q = np.array([b[k] for k in keys], dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    kl = lambda x: float(np.sum(x[x > 0] * np.log2(x[x > 0] / m[x > 0])))  # noqa: E731
    return (kl(p) + kl(q)) / 2


def fidelity(real: Sequence[str], synthetic: Sequence[str], chinese: bool, unseen_real: Sequence[str] = ()) -> dict[str, Any]:
    """Distances between real and synthetic texts; the two-sample test uses `unseen_real` (texts the
    generator never saw) when there are enough of them."""
    real_len = [len(metric_tokens(t)) for t in real]
    syn_len = [len(metric_tokens(t)) for t in synthetic]
    real_vocab = Counter(w for t in real for w in units(t))
    syn_vocab = Counter(w for t in synthetic for w in units(t))
    oov = sum(c for w, c in syn_vocab.items() if w not in real_vocab) / max(sum(syn_vocab.values()), 1)
    reference = unseen_real if len(unseen_real) >= 50 else real
    low, top = min(real_len + syn_len), int(np.percentile(real_len + syn_len, 99))  # the longest 1% would squash the rest
    edges = np.histogram_bin_edges([low, top + 1], bins=min(top + 1 - low, 30))
    return {"two_sample_auc": two_sample_auc(reference, synthetic, chinese),
            "two_sample_real": "held-out" if reference is unseen_real else "training",
            "length_mean": {"real": float(np.mean(real_len)), "synthetic": float(np.mean(syn_len))},
            "length_wasserstein": float(stats.wasserstein_distance(real_len, syn_len)),
            "length_histogram": {"edges": edges.tolist(),  # the last bar counts the longest 1% too
                                 **{side: np.histogram(np.minimum(lengths, edges[-1] - 0.5), edges)[0].tolist()
                                    for side, lengths in (("real", real_len), ("synthetic", syn_len))}},
            "unigram_js_divergence": _js_divergence(real_vocab, syn_vocab),
            "vocabulary": {"real": len(real_vocab), "synthetic": len(syn_vocab)},
            "unseen_word_rate": oov}


def diversity(texts: Sequence[str], limit: int = 1000, seed: int = 0) -> dict[str, float]:
    sample = random.Random(seed).sample(list(texts), min(limit, len(texts)))
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "distinct_3": distinct_n(texts, 3),
            "self_bleu_4": self_bleu(sample, 4) if len(sample) > 1 else float("nan"),
            "unique_ratio": len({" ".join(units(t)) for t in texts}) / max(len(texts), 1)}


def privacy(train: Sequence[str], synthetic: Sequence[str], examples: int = 3) -> dict[str, Any]:
    overlap = TrainingOverlap(train)
    train_keys = {" ".join(units(t)) for t in train}
    overlaps = np.array([overlap.overlap(t) for t in synthetic]) if synthetic else np.zeros(0)
    index = SubstringIndex([t.lower() for t in train])
    lcs = [index.longest(t.lower())[0] for t in synthetic]
    worst = sorted(range(len(synthetic)), key=lambda i: -lcs[i])[:examples]
    return {"exact_copies": sum(" ".join(units(t)) in train_keys for t in synthetic),
            "ngram_overlap": {"n": overlap.n, "mean": float(overlaps.mean()) if len(overlaps) else 0.0,
                              "max": float(overlaps.max()) if len(overlaps) else 0.0,
                              "at_least_0.5": int((overlaps >= 0.5).sum()), "at_least_0.8": int((overlaps >= 0.8).sum())},
            "longest_common_substring": {"max": max(lcs, default=0), "median": float(np.median(lcs)) if lcs else 0.0,
                                         "share_of_length_median": float(np.median([n / max(len(t), 1) for n, t in zip(lcs, synthetic)]))
                                         if lcs else 0.0,
                                         "examples": [{"text": synthetic[i], "chars": lcs[i]} for i in worst]}}


def fluency(real: Rows, synthetic: Sequence[tuple[str, str, str]], chinese: bool, rows: int = 200,
            seed: int = 0) -> dict[str, Any]:
    """Median per-token loss (nats) of up to `rows` real (text, label) rows and `rows` synthetic (text,
    label, generator) rows, seeded samples, under the language's pretrained model; `gap` is synthetic
    minus real. `map` places the same rows on the first two principal components of the model's
    (standardised) features, from the same forward pass."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from ..features import FEATURE_SOURCES, reader

    rng = random.Random(seed)
    real = rng.sample(list(real), min(rows, len(real)))
    synthetic = rng.sample(list(synthetic), min(rows, len(synthetic)))
    losses, features = reader(FEATURE_SOURCES[chinese]).read([*(t for t, _ in real), *(t for t, _, _ in synthetic)])
    real_losses, syn_losses = losses[:len(real)], losses[len(real):]

    def median(values: np.ndarray) -> float | None:
        values = values[~np.isnan(values)]
        return float(np.median(values)) if len(values) else None

    writers = sorted({g for _, _, g in synthetic})
    by_generator = {g: median(syn_losses[[i for i, (_, _, w) in enumerate(synthetic) if w == g]]) for g in writers}
    real_median, syn_median = median(real_losses), median(syn_losses)
    out = {"model": FEATURE_SOURCES[chinese], "rows": {"real": len(real), "synthetic": len(synthetic)},
           "real": real_median, "synthetic": syn_median,
           "gap": None if real_median is None or syn_median is None else syn_median - real_median,
           "by_generator": by_generator if len(writers) > 1 else {}}
    if len(features) >= 3:
        pca = PCA(2, random_state=seed)
        xy = np.round(pca.fit_transform(StandardScaler().fit_transform(features)), 3).tolist()
        out["map"] = {"explained": [round(float(v), 4) for v in pca.explained_variance_ratio_],
                      "real": [[*xy[i], y] for i, (_, y) in enumerate(real)],
                      "synthetic": [[*xy[len(real) + i], y] for i, (_, y, _) in enumerate(synthetic)]}
    return out


def nearest_rows(texts: Sequence[str], train: Rows, chinese: bool) -> list[dict[str, Any]]:
    """Each text's most similar training row (TF-IDF cosine; 1.0 for the same words), its label and the similarity."""
    if not texts or not train:
        return [{"text": t, "nearest": None, "nearest_label": None, "similarity": 0.0} for t in texts]
    vectors = tfidf_features(chinese).fit([t for t, _ in train] + list(texts))
    similarity = linear_kernel(vectors.transform(texts), vectors.transform([t for t, _ in train]))
    best = similarity.argmax(axis=1)
    return [{"text": t, "nearest": train[j][0], "nearest_label": train[j][1], "similarity": round(float(similarity[i, j]), 3)}
            for i, (t, j) in enumerate(zip(texts, best))]


def quality_report(train: Rows, heldout: Rows, synthetic: Rows, chinese: bool, seeds: int = 5,
                   classifier: ClassifierKind = "tfidf", examples_per_label: int = 5) -> dict[str, Any]:
    real_texts, syn_texts = [t for t, _ in train], [t for t, _ in synthetic]
    labels = sorted({y for _, y in train})
    rng = random.Random(0)
    per_label = {}
    for label in labels:
        real = [t for t, y in train if y == label]
        syn = [t for t, y in synthetic if y == label]
        per_label[label] = {"real": rng.sample(real, min(examples_per_label, len(real))),
                            "synthetic": nearest_rows(rng.sample(syn, min(examples_per_label, len(syn))), train, chinese)}
    return {"rows": {"train": len(train), "heldout": len(heldout), "synthetic": len(synthetic)},
            "label_balance": {label: {"real": sum(y == label for _, y in train), "synthetic": sum(y == label for _, y in synthetic)}
                              for label in labels},
            "utility": utility(train, heldout, synthetic, chinese, seeds, classifier) if synthetic and heldout else None,
            "fidelity": fidelity(real_texts, syn_texts, chinese, [t for t, _ in heldout]) if syn_texts else None,
            "diversity": {"synthetic": diversity(syn_texts) if syn_texts else None, "real": diversity(real_texts)},
            "privacy": privacy(real_texts, syn_texts),
            "examples": per_label}
