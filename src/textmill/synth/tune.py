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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import atomic_write_text
from ..progress import Report
from .config import SynthConfig
from .fill import fill_label
from .filters import FilterChain
from .generators import SynthGenerator
from .journal import JournalState
from .quality import classifier_scores
from .rows import Rows, stratified_split

log = logging.getLogger(__name__)

TUNE_SHARE = 0.25  # of the rows the run writes, per setting
VALIDATION_SHARE = 0.25  # of the training rows, when no tune_data is given
FEW_VALIDATION_ROWS = 100  # below this, warn: a row or two decides the choice


def check_tunable(generator: SynthGenerator) -> None:
    """Refuse tuning that cannot mean anything, before any work."""
    if not generator.samples:
        raise ConfigError(f"tune chooses the sampling temperature and top-p of one generator that samples a model (ngram, "
                          f"rnn/lstm/gru, gpt, cvae, run, prompt or pretrained); the {generator.name!r} generator is not "
                          "one: pick one of those, or drop tune")
    given = [k for k in ("temperature", "top_p") if k in generator.options.model_fields_set]
    if given:
        raise ConfigError(f"tune chooses temperature and top_p itself, but {' and '.join(given)} was given too; drop "
                          "--temperature/--top-p, or drop --tune and keep them")


def choose_sampling(cfg: SynthConfig, generator: SynthGenerator, build: Callable[[], SynthGenerator], train: Rows,
                    tune_rows: Rows | None, labels: list[str], chinese: bool, work: Path,
                    make_filters: Callable[[Rows], FilterChain], progress: Report) -> dict[str, Any]:
    """The tuning record ({"chosen": {...}, "settings": [...], ...}); see the module docstring.
    `generator` is the run's own, already fitted on `train`; `build` makes another for a fold."""
    record_path = work / "tuning.json"
    if record_path.exists():  # a resumed run keeps the choice it made
        return json.loads(record_path.read_text(encoding="utf-8"))
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
    wanted = {x: max(1, round(TUNE_SHARE * n)) for x, n in cfg.wanted(fit_rows, labels).items()}
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
    atomic_write_text(record_path, json.dumps(record, indent=1))
    return record
