"""Choosing how a generator samples (temperature and top-p) on real rows that the report never sees.

How hot to sample is the knob that trades a generator's diversity against its faithfulness, and the
best setting depends on the data: on EDA's SST-2 and TREC the n-gram generator's rows helped a CNN
most at temperature 0.7, which no rule of thumb predicts. With `tune=True` (`--tune`), synth measures
it before writing any row:

1. validation rows: `tune_data` when given (a labelled dev set), else a stratified quarter of the
   training rows, which the generator fitted for tuning does not see;
2. for each setting of `tune_grid`, a generator fitted on the other rows (all training rows with
   `tune_data`: then it is the run's own generator) writes a quarter of the rows the run will write,
   per label in the same proportions, through the same filters, from the same seeds;
3. the report's classifier (`report_classifier`) trains on those real rows + each setting's rows and
   is scored on the validation rows, beside the real rows alone; the best accuracy wins (a tie goes
   to the earlier setting).

The winner replaces the generator's `temperature` and `top_p`. The table goes to the report and to
`OUT.work/tuning.json`, so a resumed run does not tune again.

A mix (the English recipe is one) is tuned on what it selects rather than how it samples
(`choose_mix`): each part writes one pool of rows per label (a quarter of the run's rows, through the
filters with the label filter's threshold at 0, each row keeping its `label_prob`), EDA writes one for
the labels small enough for an `eda_below` candidate to edit, and every combination of
- the shares: the run's, equal, and each part alone;
- the label filter's threshold (`min_label_prob`): `MIN_LABEL_PROBS` and the run's;
- `eda_below`: 0, the run's and `EDA_BELOW`, counted once for each set of labels it edits;
takes its rows from the pools (a label's count split by the shares, each part's first rows whose
`label_prob` reaches the threshold) and is scored as above. Rows are generated once, so the
combinations cost a classifier fit each, and the pools are kept in `OUT.work/tuning_pools/`, so an
interrupted tuning writes none again. The best setting replaces the run's own (tried first) only when
it beats it by more than `MARGIN_SE` standard errors of the paired difference on the validation rows
(row by row, right or wrong): on a few hundred rows most differences between settings are a row or
two, and a choice made on noise can cost more than it gains (a prompted generator alone writes its
rows many times slower than the recipe's mix). The winner sets the mix's shares, `min_label_prob`
and `eda_below`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..files import atomic_write_text
from ..progress import Report
from .config import Sampling, SynthConfig
from .fill import fill_label
from .filters import Candidate, FilterChain
from .generators import SynthGenerator, build_generator
from .generators.mix import MixGenerator, split_by_shares
from .journal import JournalState
from .quality import accuracy_f1, classifier_scores, predictions
from .rows import Rows, stratified_split

log = logging.getLogger(__name__)

TUNE_SHARE = 0.25  # of the rows the run writes, per setting
VALIDATION_SHARE = 0.25  # of the training rows, when no tune_data is given
FEW_VALIDATION_ROWS = 100  # below this, warn: a row or two decides the choice


def check_tunable(generator: SynthGenerator) -> None:
    """Refuse tuning that cannot mean anything, before any work."""
    if isinstance(generator, MixGenerator):
        return  # a mix is tuned on its shares, label filter and eda_below (choose_mix)
    if not generator.samples:
        raise ConfigError(f"tune chooses the sampling temperature and top-p of one generator that samples a model (ngram, "
                          f"rnn/lstm/gru, gpt, cvae, run, prompt or pretrained), or a mix's shares; the {generator.name!r} "
                          "generator is neither: pick one of those, or drop tune")
    given = [k for k in ("temperature", "top_p") if k in generator.options.model_fields_set]
    if given:
        raise ConfigError(f"tune chooses temperature and top_p itself, but {' and '.join(given)} was given too; drop "
                          "--temperature/--top-p, or drop --tune and keep them")


def _validation(cfg: SynthConfig, generator: SynthGenerator, build: Callable[[], SynthGenerator], train: Rows,
                tune_rows: Rows | None, chinese: bool, work: Path,
                progress: Report) -> tuple[SynthGenerator, list[tuple[str, str]], list[tuple[str, str]], str]:
    """(the generator fitted on the fit rows, fit rows, validation rows, where the validation rows come from)."""
    if tune_rows is not None:
        fit_rows, validation, where = list(train), list(tune_rows), "tune_data"
    else:
        fit_rows, validation = stratified_split(train, VALIDATION_SHARE, cfg.seed + 1)
        where = f"a stratified {VALIDATION_SHARE:.0%} of the training rows"
        progress(f"tuning: fitting the {cfg.generator} generator on {len(fit_rows):,} rows", 0, None)
        generator = build()
        generator.progress = progress
        generator.fit(fit_rows, work / "tuning", chinese, cfg.seed)
    if len(validation) < FEW_VALIDATION_ROWS:
        log.warning("tuning on %d validation rows: a row or two decides the choice; pass tune_data (a labelled dev set) "
                    "for a steadier one", len(validation))
    return generator, fit_rows, validation, where


def _quarter(cfg: SynthConfig, fit_rows: Rows, labels: list[str]) -> dict[str, int]:
    """The rows a tried setting writes for each label: TUNE_SHARE of what the run would write from `fit_rows`."""
    return {x: max(1, round(TUNE_SHARE * n)) for x, n in cfg.wanted(fit_rows, labels).items()}


def _saved(work: Path) -> dict[str, Any] | None:
    path = work / "tuning.json"  # a resumed run keeps the choice it made
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def choose_sampling(cfg: SynthConfig, generator: SynthGenerator, build: Callable[[], SynthGenerator], train: Rows,
                    tune_rows: Rows | None, labels: list[str], chinese: bool, work: Path,
                    make_filters: Callable[[Rows], FilterChain], progress: Report) -> dict[str, Any]:
    """The tuning record ({"chosen": {...}, "settings": [...], ...}); see the module docstring.
    `generator` is the run's own, already fitted on `train`; `build` makes another for a fold."""
    if (saved := _saved(work)) is not None:
        return saved
    generator, fit_rows, validation, where = _validation(cfg, generator, build, train, tune_rows, chinese, work, progress)
    wanted = _quarter(cfg, fit_rows, labels)
    real_acc, real_f1 = classifier_scores(fit_rows, validation, chinese, cfg.seed, cfg.report_classifier)
    settings = []
    for i, setting in enumerate(cfg.tune_grid):
        progress(f"tuning: {setting.describe()} ({i + 1} of {len(cfg.tune_grid)})", i, len(cfg.tune_grid))
        for key, value in setting.model_dump().items():
            setattr(generator.options, key, value)
        chain, state = make_filters(fit_rows), JournalState()
        for label in labels:
            fill_label(generator, chain, label, wanted[label], state.progress(label), f"{cfg.seed}/tune",
                       lambda label, chunk, seed, kept, generated, removed: state.apply(
                           label, chunk, [{"text": c.text, "label": label} for c in kept], generated, removed),
                       cfg.chunk_size, cfg.max_attempts)
        synthetic = [(r["text"], r["label"]) for r in state.rows]
        acc, f1 = classifier_scores(fit_rows + synthetic, validation, chinese, cfg.seed, cfg.report_classifier)
        generated = sum(state.progress(x).generated for x in labels)
        settings.append({**setting.model_dump(), "accuracy": acc, "macro_f1": f1, "rows": len(synthetic),
                         "generated": generated})
        log.info("tuning: %s: accuracy %.2f (real only %.2f), %d rows kept of %d", setting.describe(), acc, real_acc,
                 len(synthetic), generated)
    best = max(range(len(settings)), key=lambda i: (settings[i]["accuracy"], -i))
    record = {"chosen": cfg.tune_grid[best].model_dump(), "validation": where, "validation_rows": len(validation),
              "fit_rows": len(fit_rows), "classifier": cfg.report_classifier, "share": TUNE_SHARE,
              "real_only": {"accuracy": real_acc, "macro_f1": real_f1}, "settings": settings}
    atomic_write_text(work / "tuning.json", json.dumps(record, indent=1))
    return record


MARGIN_SE = 2.0  # a mix's tuning keeps the run's own setting unless the best beats it by this many standard errors
MIN_LABEL_PROBS = (0.0, 0.7, 0.9)  # the label filter's thresholds a mix's tuning tries, beside the run's
EDA_BELOW = (20, 50)  # eda_below values it tries, beside 0 and the run's


def _pool(generator: SynthGenerator, chain: FilterChain, label: str, want: int, seed: str, cfg: SynthConfig,
          path: Path) -> list[Candidate]:
    """Up to `want` of the generator's rows of `label` that pass `chain`, in the order written; kept at
    `path` (JSONL), which a rerun reads instead of writing them again."""
    if path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        kept = [Candidate(r["text"], label, r["scores"]) for r in rows]
        chain.commit(kept)
        return kept
    state, kept = JournalState(), []

    def commit(label: str, chunk: int, seed: int, rows: list[Candidate], generated: int, removed: dict[str, int]) -> None:
        kept.extend(rows)
        state.apply(label, chunk, [{"text": c.text, "label": label} for c in rows], generated, removed)

    fill_label(generator, chain, label, want, state.progress(label), seed, commit, cfg.chunk_size, cfg.max_attempts)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps({"text": c.text, "scores": c.scores}, ensure_ascii=False) + "\n" for c in kept))
    return kept


def _candidates(cfg: SynthConfig, specs: list[str], shares: list[float], counts: dict[str, int],
                label_filter: bool) -> list[dict[str, Any]]:
    """The combinations a mix's tuning tries, the run's own first, each set of edited labels once."""
    share_options = [dict(zip(specs, shares)), dict.fromkeys(specs, 1.0)]
    share_options += [{s: float(s == alone) for s in specs} for alone in specs]
    share_options = [x for i, x in enumerate(share_options) if x not in share_options[:i]]
    probs = sorted({cfg.min_label_prob, *MIN_LABEL_PROBS}, key=lambda p: p != cfg.min_label_prob) if label_filter \
        else [cfg.min_label_prob]
    below, edits = [], []
    for value in (cfg.eda_below, 0, *EDA_BELOW):
        edited = sorted(x for x, n in counts.items() if n < value)
        if edited not in edits:
            below.append(value)
            edits.append(edited)
    return [{"shares": sh, "min_label_prob": p, "eda_below": b} for sh in share_options for p in probs for b in below]


def beyond_noise(right: list[np.ndarray]) -> tuple[int, dict[str, float]]:
    """The setting to run, given which validation rows each setting's classifier got right (the run's
    own first): the most accurate (ties to the earlier), if it beats the run's own by more than
    `MARGIN_SE` standard errors of their paired difference; else the run's own. Also the margin."""
    best = max(range(len(right)), key=lambda i: (right[i].mean(), -i))
    diff = right[best].astype(float) - right[0]
    margin = {"gain": 100 * float(diff.mean()),
              "se": 100 * float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")}
    if best and not margin["gain"] > MARGIN_SE * margin["se"]:
        log.info("tuning: the best setting beats the run's own by %.2f points, within %g standard errors (%.2f): the run "
                 "keeps its own", margin["gain"], MARGIN_SE, margin["se"])
        best = 0
    return best, margin


def describe(setting: dict[str, Any]) -> str:
    """One tried setting in words, a mix's or a sampling one."""
    if "shares" in setting:
        shares = ":".join(f"{v:g}" for v in setting["shares"].values())
        return f"shares {shares}, label filter >= {setting['min_label_prob']:g}, eda_below {setting['eda_below']}"
    return Sampling(temperature=setting["temperature"], top_p=setting["top_p"]).describe()


def choose_mix(cfg: SynthConfig, generator: MixGenerator, build: Callable[[], SynthGenerator], train: Rows,
               tune_rows: Rows | None, labels: list[str], chinese: bool, work: Path,
               make_filters: Callable[[Rows], FilterChain], progress: Report) -> dict[str, Any]:
    """A mix's tuning record: shares, label-filter threshold and eda_below chosen on validation rows
    from pools written once (module docstring). `make_filters` builds the chain with the label filter's
    threshold at 0."""
    if (saved := _saved(work)) is not None:
        return saved
    mix, fit_rows, validation, where = _validation(cfg, generator, build, train, tune_rows, chinese, work, progress)
    assert isinstance(mix, MixGenerator)
    wanted = _quarter(cfg, fit_rows, labels)
    counts = Counter(y for _, y in train)  # the run edits by its training rows' counts
    settings = _candidates(cfg, mix.specs, mix.shares, {x: counts[x] for x in labels}, "label" not in cfg.skip_filters)
    pools: dict[str, dict[str, list[Candidate]]] = {}
    writers = list(zip(mix.specs, mix.parts))
    editable = {x for x in labels if counts[x] < max(s["eda_below"] for s in settings)}
    if editable:
        editor = build_generator("eda")
        editor.fit(fit_rows, work / "tuning_eda", chinese, cfg.seed)
        writers.append(("eda", editor))
    for i, (spec, part) in enumerate(writers):
        progress(f"tuning: {spec} writes its pool ({i + 1} of {len(writers)})", i, len(writers))
        chain = make_filters(fit_rows)
        pools[spec] = {x: _pool(part, chain, x, wanted[x], f"{cfg.seed}/tune/{spec}", cfg,
                                work / "tuning_pools" / f"{i}_{labels.index(x)}.jsonl")
                       for x in labels if spec != "eda" or x in editable}
    real_acc, real_f1 = classifier_scores(fit_rows, validation, chinese, cfg.seed, cfg.report_classifier)
    results, right = [], []
    for i, setting in enumerate(settings):
        progress(f"tuning: {describe(setting)} ({i + 1} of {len(settings)})", i, len(settings))
        synthetic = []
        for label in labels:
            ok = [[c for c in pools[spec][label] if c.scores.get("label_prob", 1.0) >= setting["min_label_prob"]]
                  for spec in (["eda"] if counts[label] < setting["eda_below"] else mix.specs)]
            split = [wanted[label]] if len(ok) == 1 else split_by_shares(wanted[label], [setting["shares"][s] for s in mix.specs])
            synthetic += [(c.text, label) for rows, k in zip(ok, split) for c in rows[:k]]
        truth, pred = predictions(fit_rows + synthetic, validation, chinese, cfg.seed, cfg.report_classifier)
        right.append(np.asarray(pred) == np.asarray(truth))
        acc, f1 = accuracy_f1(truth, pred)
        results.append({**setting, "accuracy": acc, "macro_f1": f1, "rows": len(synthetic)})
        log.info("tuning: %s: accuracy %.2f (real only %.2f), %d rows", describe(setting), results[-1]["accuracy"],
                 real_acc, len(synthetic))
    best, margin = beyond_noise(right)
    record = {"kind": "mix", "chosen": settings[best], "margin": margin, "margin_se": MARGIN_SE,
              "validation": where, "validation_rows": len(validation),
              "fit_rows": len(fit_rows), "classifier": cfg.report_classifier, "share": TUNE_SHARE,
              "pools": {spec: sum(map(len, by_label.values())) for spec, by_label in pools.items()},
              "real_only": {"accuracy": real_acc, "macro_f1": real_f1}, "settings": results}
    atomic_write_text(work / "tuning.json", json.dumps(record, indent=1))
    return record

