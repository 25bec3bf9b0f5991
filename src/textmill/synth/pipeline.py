"""`textmill synth`: labelled data in, filtered synthetic data and a quality report out.

1. Load and check the labelled rows; hold out a stratified share of each label (or read a separate
   evaluation file) that only the report ever sees.
2. Fit the generator on the training rows (and EDA, for the labels with fewer rows than `eda_below`:
   a generator learns little from a handful of a label's rows, and its samples of such a label
   multiply whatever shape those rows share; an edit of a real row keeps its label).
3. Per label, generate chunks, filter them, and commit each chunk to the journal until the label
   has its rows: `per_label` each, or `per_row` times its real rows (the generator may stop
   producing rows that pass the filters first).
4. Write the output table atomically, then the report.

Everything a run produces lives beside the output: `OUT` itself, and `OUT.work/` with the journal,
the split and the trained generator. Running the same command again after an interruption
continues from the journal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, DataError
from ..evaluation.metrics import is_chinese, metric_tokens
from ..files import replacing
from ..progress import ProgressOption, Report, reporter
from ..safety import Redactor
from .config import FLUENCY_ROWS, OUTPUT_FORMATS, SynthConfig
from .fill import fill_label
from .filters import (
    Candidate,
    Charset,
    Content,
    Custom,
    ExactDuplicates,
    Filter,
    FilterChain,
    Fluency,
    LabelConsistency,
    Length,
    NearDuplicates,
    Normalise,
    PersonalInformation,
    TrainingCopies,
    TrainingOverlap,
)
from .generators import MixGenerator, SynthGenerator, build_generator
from .journal import Journal, JournalState
from .quality import fluency, quality_report
from .report import write_report
from .rows import Row, Rows, check_labels, load_rows, stratified_split
from .tune import check_tunable, choose_mix, choose_sampling, describe

log = logging.getLogger(__name__)


def generator_audit(run: Path, synthetic: Sequence[str]) -> dict[str, Any]:
    """What the report says about the trained generator's privacy: its DP guarantee (if any), loss-
    threshold membership inference on its training rows against its own validation rows, and its
    planted canaries (ranked, and counted in the synthetic rows)."""
    from ..evaluation.audit import AuditOptions, audit
    from ..training.privacy import read_privacy

    found = audit(run, AuditOptions(candidates=1000, samples=0))
    out: dict[str, Any] = {"dp": read_privacy(run), "membership": found["membership"]}
    if "canaries" in found:
        secrets = {c["secret"] for c in found["canaries"]}
        out["canaries"] = found["canaries"]
        out["canaries_in_output"] = sum(any(x in t for x in secrets) for t in synthetic)
    return out


@dataclass
class SynthResult:
    out: Path
    rows: int
    per_label: dict[str, int]
    removed: dict[str, int]
    report: dict[str, Any] | None
    report_path: Path | None
    tuning: dict[str, Any] | None = None  # with tune: each setting's validation score and the one chosen


def _config_hash(cfg: SynthConfig) -> str:
    h = hashlib.sha256()
    for path in (cfg.data, cfg.eval_data, cfg.tune_data):
        if path and not path.startswith("embedded:"):
            h.update(hashlib.sha256(Path(path).read_bytes()).digest())
    # what only the report reads may change on a resumed run; with tune, report_classifier chooses the sampling
    report_only = {"report", "report_seeds", "report_fluency"} | ({"report_classifier"} if not cfg.tune else set())
    settings = cfg.model_dump(exclude={"data", "eval_data", "out", *report_only})
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _scan_input(train: Rows, cfg: SynthConfig) -> tuple[Rows, dict[str, Any]]:
    """The training rows (masked with `redact_input`) and what personal information they held."""
    redactor = Redactor("mask")
    redacted = [(redactor(t), y) for t, y in train]
    found = {"rows": sum(r[0] != t for r, (t, _) in zip(redacted, train)), "of": len(train), "types": redactor.counts,
             "redacted": cfg.redact_input}
    if found["rows"]:
        log.warning("%d of %d training rows hold personal information (%s)%s", found["rows"], len(train),
                    ", ".join(f"{v} {k}" for k, v in sorted(redactor.counts.items())),
                    "; masked before the generator sees them" if cfg.redact_input else
                    "; the generator may learn it: pass redact_input=true (CLI: --redact-input) to mask it first")
    return (redacted if cfg.redact_input else train), found


def _filters(cfg: SynthConfig, train: Rows, chinese: bool, extra: Sequence[Filter]) -> FilterChain:
    texts = [t for t, _ in train]
    lengths = sorted(len(metric_tokens(t)) for t in texts)
    chosen: list[Filter] = [
        Normalise(),
        Length(cfg.min_tokens or max(1, lengths[0]), cfg.max_tokens or lengths[-1]),
        Charset(texts, cfg.max_foreign_chars),
        ExactDuplicates(),
        TrainingCopies(TrainingOverlap(texts), cfg.max_train_overlap),
        NearDuplicates(cfg.near_duplicate_threshold, seed=cfg.seed + 1),
        PersonalInformation(cfg.pii_types),
        Content(cfg.content_categories),
    ]
    if cfg.fluency_percentile is not None and "fluency" not in cfg.skip_filters:  # scores the real rows when built
        chosen.append(Fluency(texts, chinese, cfg.fluency_percentile, cfg.seed))
    if "label" not in cfg.skip_filters:  # its classifier trains (or loads a model) when built
        chosen.append(LabelConsistency(texts, [y for _, y in train], chinese, cfg.min_label_prob, cfg.label_classifier))
    return FilterChain([f for f in chosen if f.name not in cfg.skip_filters] + list(extra))


def write_table(rows: list[dict[str, Any]], path: Path, before_rename: Callable[[Path], None] | None = None) -> None:
    """JSONL, CSV or Parquet by the suffix, written whole or not at all (`before_rename` sees the
    complete temporary file first)."""
    suffix = path.suffix.lower()
    with replacing(path) as tmp:
        if suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        elif suffix == ".csv":
            import csv

            fields = list(dict.fromkeys(k for r in rows for k in r))
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                w = csv.DictWriter(f, fieldnames=fields)
                w.writeheader()
                w.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), tmp)
        if before_rename:
            before_rename(tmp)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_existing_work(out: Path, work: Path, journal: Journal, config_hash: str, resume: bool) -> None:
    """Refuse, before anything is touched, to replace a file that synth did not write or to mix runs;
    clear the work of a run with other options that generated nothing (it failed while setting up)."""
    state = journal.read() if work.exists() else None
    if out.exists():
        if state is None or state.output_sha256 != file_sha256(out):
            raise DataError(f"{out} exists and was not written by this synth run (no journal in {work} records it); "
                            "choose another --out, or pass --overwrite to replace it")
        if state.config_hash != config_hash:
            raise DataError(f"{out} was written by a synth run with other options or data; pass --overwrite to replace it "
                            "and its work directory, or choose another --out")
    elif state is not None and state.config_hash != config_hash and not state.generated:
        log.info("starting afresh: %s holds a run with other options that generated nothing", work)
        shutil.rmtree(work)
    elif resume and state is None:
        raise DataError(f"nothing to resume: {work} holds no synth journal; run the command without --resume")


def synthesize(data: str | None = None, *, out: str | Path | None = None, resume: bool = False, overwrite: bool = False,
               extra_filters: Sequence[Filter | tuple[str, Callable[[str], str | None]]] = (),
               progress: ProgressOption = True, **options: Any) -> SynthResult:
    """Generate `per_label` filtered synthetic rows for each label of `data` (or `per_row` for each of
    its real rows) and write them to `out`.

        textmill.synthesize("data.csv", text_col="text", label_col="label", generator="gpt",
                            per_label=500, out="synth.jsonl", report="report.html")

    Options are the fields of `SynthConfig`. `extra_filters` adds filters after the built-in ones:
    `Filter` objects, or (name, function) pairs where the function returns None to keep a text or
    a reason to remove it. `progress` draws a bar on standard error while the generator fits, rows
    are generated and the report is written (False: none; a callable receives `(what, done, total)`).

    Running the same call again continues an interrupted run from its journal (or re-reports a
    finished one); `resume=True` also asserts that there is such a run. An output file that synth
    did not write, or wrote with other options, is only replaced with `overwrite=True`."""
    report, bar = reporter(progress, "synth")
    with bar or contextlib.nullcontext():
        cfg = _config(data, out, options)
        extra = [f if isinstance(f, Filter) else Custom(*f) for f in extra_filters]
        return _Run(cfg, extra, report).go(resume, overwrite)


def _config(data: str | None, out: str | Path | None, options: dict[str, Any]) -> SynthConfig:
    try:
        cfg = SynthConfig(data=data, out=str(out) if out is not None else None, **options)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise ConfigError(f"synth option {where}: {err['msg']}" if where else
                          f"synth options: {err['msg'].removeprefix('Value error, ')}") from None
    if Path(cfg.out).suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"output {cfg.out} must end in {', '.join(OUTPUT_FORMATS)}")
    return cfg


@dataclass
class _Inputs:
    """The real rows as synth uses them."""

    train: list[Row]  # what the generator and the filters learn from (masked with redact_input)
    heldout: list[Row]  # what only the report scores on
    tune_rows: list[Row] | None  # tune_data's rows
    labels: list[str]
    warnings: list[str]
    chinese: bool
    input_pii: dict[str, Any]  # what personal information the training rows held


def _read(cfg: SynthConfig) -> _Inputs:
    """Load and check the labelled rows, and split off the report's share (or read eval_data)."""
    rows = load_rows(cfg.data, cfg.format, cfg.text_col, cfg.label_col, cfg.max_rows)
    rows, labels, warnings = check_labels(rows, cfg.labels, cfg.data)

    def of_labels(path: str) -> list[Row]:
        return [r for r in load_rows(path, cfg.format, cfg.text_col, cfg.label_col) if r[1] in set(labels)]

    train, heldout = (list(rows), of_labels(cfg.eval_data)) if cfg.eval_data else stratified_split(rows, cfg.holdout, cfg.seed)
    tune_rows = of_labels(cfg.tune_data) if cfg.tune_data else None
    if tune_rows is not None and len({y for _, y in tune_rows}) < 2:
        raise DataError(f"tune_data {cfg.tune_data} holds {len(tune_rows)} rows of this run's labels ({labels}) in "
                        f"{len({y for _, y in tune_rows})} label(s); tuning needs validation rows of at least 2 labels")
    train, input_pii = _scan_input(train, cfg)
    return _Inputs(train, heldout, tune_rows, labels, warnings, is_chinese([t for t, _ in train]), input_pii)


class _Run:
    """One synth run, phase by phase: build the generator, read the rows, open the work directory,
    fit (and tune), fill every label, write the table, report."""

    def __init__(self, cfg: SynthConfig, extra: list[Filter], progress: Report) -> None:
        self.cfg, self.extra, self.progress = cfg, extra, progress
        self.out = Path(cfg.out)
        self.work = self.out.with_name(self.out.name + ".work")

    def go(self, resume: bool, overwrite: bool) -> SynthResult:
        inputs = _read(self.cfg)
        self.cfg = cfg = self.cfg.with_recipe(inputs.chinese)
        generator = self.build()
        if cfg.tune:
            check_tunable(generator)
        config_hash = _config_hash(cfg)
        journal, state = self.open_work(config_hash, resume, overwrite)
        tuning = self.fit(generator, inputs)
        chain = self.filters(inputs.train, inputs.chinese)  # after tuning, which may choose the label filter's threshold
        chain.commit([Candidate(r["text"], r["label"]) for r in state.rows])
        edited = self.edited_labels(inputs)
        self.fill(generator, edited, inputs, chain, journal, state, config_hash)
        write_table(state.rows, self.out, lambda tmp: journal.record_output(file_sha256(tmp)))
        removed: Counter[str] = Counter()
        for label in inputs.labels:
            removed.update(state.progress(label).removed)
        report, report_path = (self.report(generator, inputs, state, chain, removed, edited, tuning, config_hash)
                               if cfg.report else (None, None))
        return SynthResult(self.out, len(state.rows), {x: state.progress(x).kept for x in inputs.labels}, dict(removed),
                           report, report_path, tuning)

    def build(self) -> SynthGenerator:
        cfg = self.cfg
        generator = build_generator(cfg.generator, cfg.generator_options)
        generator.train_privately({"epsilon": cfg.dp_epsilon} if cfg.dp_epsilon else None,
                                  cfg.canaries.model_dump() if cfg.canaries else None)
        generator.progress = self.progress
        return generator

    def filters(self, train: Rows, chinese: bool) -> FilterChain:
        return _filters(self.cfg, train, chinese, self.extra)

    def open_work(self, config_hash: str, resume: bool, overwrite: bool) -> tuple[Journal, JournalState]:
        """The journal of this run: a new one, or the one an interrupted run left."""
        journal = Journal(self.work / "journal.jsonl", config_hash)
        if overwrite:
            self.out.unlink(missing_ok=True)
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            _check_existing_work(self.out, self.work, journal, config_hash, resume)
        return journal, journal.open()

    def fit(self, generator: SynthGenerator, inputs: _Inputs) -> dict[str, Any] | None:
        """Fit the generator on the training rows; with tune, choose its sampling first (tune.py)."""
        cfg = self.cfg
        log.info("fitting the %s generator on %d rows (%d labels)", cfg.generator, len(inputs.train), len(inputs.labels))
        self.progress(f"fitting the {cfg.generator} generator on {len(inputs.train):,} rows", 0, None)
        generator.fit(inputs.train, self.work, inputs.chinese, cfg.seed)
        if not cfg.tune:
            return None
        if isinstance(generator, MixGenerator):
            pools = cfg.model_copy(update={"min_label_prob": 0.0})  # the pools keep every row's label_prob to choose from
            tuning = choose_mix(cfg, generator, self.build, inputs.train, inputs.tune_rows, inputs.labels, inputs.chinese,
                                self.work, lambda rows: _filters(pools, rows, inputs.chinese, self.extra), self.progress)
            chosen = tuning["chosen"]
            generator.shares = [chosen["shares"][spec] for spec in generator.specs]
            self.cfg = cfg.model_copy(update={"min_label_prob": chosen["min_label_prob"], "eda_below": chosen["eda_below"]})
            log.info("tuning chose %s", describe(chosen))
            return tuning
        tuning = choose_sampling(cfg, generator, self.build, inputs.train, inputs.tune_rows, inputs.labels, inputs.chinese,
                                 self.work, lambda rows: self.filters(rows, inputs.chinese), self.progress)
        for key, value in tuning["chosen"].items():
            setattr(generator.options, key, value)
        log.info("tuning chose %s", describe(tuning["chosen"]))
        return tuning

    def edited_labels(self, inputs: _Inputs) -> set[str]:
        """The labels with fewer real rows than eda_below: their rows are EDA's edits of them."""
        if self.cfg.generator == "eda":
            return set()
        counts = Counter(y for _, y in inputs.train)
        small = {x for x in inputs.labels if counts[x] < self.cfg.eda_below}
        for label in sorted(small):
            log.info("label %r has %d real rows, fewer than eda_below: its rows are EDA's edits of them", label, counts[label])
        return small

    def fill(self, generator: SynthGenerator, edited: set[str], inputs: _Inputs, chain: FilterChain, journal: Journal,
             state: JournalState, config_hash: str) -> None:
        """Per label, generate, filter and commit chunks until the label has its rows."""
        cfg = self.cfg
        editor = None
        if edited:  # EDA over the training rows, for the labels too small for the generator to learn from
            editor = build_generator("eda")
            editor.fit(inputs.train, self.work / "eda", inputs.chinese, cfg.seed)
        wanted = cfg.wanted(inputs.train, inputs.labels)
        total = sum(wanted.values())
        done = sum(min(state.progress(label).kept, wanted[label]) for label in inputs.labels)
        self.progress("generating and filtering rows", done, total)

        def commit(label: str, chunk: int, seed: int, kept: list[Candidate], generated: int, removed: dict[str, int]) -> None:
            nonlocal done
            writer = "eda" if label in edited else cfg.generator
            new_rows = [{"text": c.text, "label": label, "generator": c.source or writer, "seed": seed, **c.scores,
                         "config_hash": config_hash} for c in kept]
            journal.commit(label, chunk, new_rows, generated, removed)
            state.apply(label, chunk, new_rows, generated, removed)
            done += len(kept)
            self.progress(f"generating and filtering rows ({label})", done, total)

        for label in inputs.labels:
            p = state.progress(label)
            fill_label(editor if label in edited else generator, chain, label, wanted[label], p, cfg.seed, commit,
                       cfg.chunk_size, cfg.max_attempts)
            if p.kept < wanted[label]:
                msg = (f"label {label!r}: only {p.kept} of {wanted[label]} rows passed the filters after {p.generated} "
                       f"generated (removed: {dict(p.removed)}); loosen the filters or use a stronger generator")
                log.warning(msg)
                inputs.warnings.append(msg)

    def report(self, generator: SynthGenerator, inputs: _Inputs, state: JournalState, chain: FilterChain,
               removed: Counter[str], edited: set[str], tuning: dict[str, Any] | None,
               config_hash: str) -> tuple[dict[str, Any], Path]:
        """The quality report (quality.py), with the run's privacy audit, written as HTML and JSON."""
        cfg = self.cfg
        self.progress(f"report: {cfg.report_classifier} classifiers on {cfg.report_seeds} resamples, fidelity, diversity, "
                      "privacy", 0, None)
        synthetic = [(r["text"], r["label"]) for r in state.rows]
        report = quality_report(inputs.train, inputs.heldout, synthetic, inputs.chinese, cfg.report_seeds, cfg.report_classifier)
        report["privacy"]["input_pii"] = inputs.input_pii
        report["rows"]["by_generator"] = dict(Counter(r["generator"] for r in state.rows))
        report["rows"]["by_label_generator"] = {label: dict(Counter(r["generator"] for r in state.rows if r["label"] == label))
                                                for label in inputs.labels}
        sample = FLUENCY_ROWS[inputs.chinese] if cfg.report_fluency is None else cfg.report_fluency
        if sample and state.rows:
            self.progress(f"report: fluency and map of {min(sample, len(state.rows))} synthetic and real rows under the "
                          "pretrained model", 0, None)
            report["fluency"] = fluency(inputs.train, [(r["text"], r["label"], r["generator"]) for r in state.rows],
                                        inputs.chinese, sample, cfg.seed)
        runs = generator.trained_runs()
        if runs:
            self.progress("report: auditing the generator for memorization", 0, None)
            audits = {name: generator_audit(run, [t for t, _ in synthetic]) for name, run in runs.items()}
            if isinstance(generator, MixGenerator):
                report["privacy"]["generators"] = audits  # by the mix's generator that trained each run
            else:
                report["privacy"]["generator"] = next(iter(audits.values()))
        reasons = chain.reasons()
        report |= {"config_hash": config_hash, "generator": generator.describe(), "warnings": inputs.warnings,
                   "tuning": tuning, "edited_labels": sorted(edited),
                   "filters": {"generated": sum(state.progress(x).generated for x in inputs.labels),
                               "removed": {k: {"removed": removed.get(k, 0), "reason": reasons.get(k, "")} for k in reasons}}}
        return report, write_report(report, cfg.report)[0]
