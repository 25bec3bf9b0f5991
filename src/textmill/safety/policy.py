"""One safety policy for prompts and outputs: the content filter's policy per category and what to do
with personal information, applied by `generate` (`safety=`), `textmill serve --safety` and
`textmill redact --safety`.

A prompt whose verdict is `refuse` is rejected (`SafetyError`, naming the categories); `mask`ed spans
are replaced before the model reads them. An output is cut before its first refused span (the server
reports `finish_reason: "content_filter"`); masked spans are replaced; `flag` only counts. `counts`
tallies what was found, as `input:hate`, `output:pii:PHONE`, ...
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from ..config import Strict, checked
from ..errors import ConfigError, TextmillError
from .content import CATEGORIES, ContentFilter, Policy, check_categories
from .pii import TYPES, PiiTypes, Redactor, detect

PII_DEFAULT = [t for t in TYPES if t != "NAME"]  # names have the lowest precision: opt in
STREAM_HOLD = 24  # characters a stream holds back so that a word being written can still be masked or cut


class SafetyError(TextmillError):
    """A prompt was refused by the safety policy."""

    def __init__(self, message: str, categories: list[str]) -> None:
        super().__init__(message)
        self.categories = categories


def _known_categories(content: dict[str, Policy]) -> dict[str, Policy]:
    check_categories(content)
    return content


class SafetyConfig(Strict):
    content: Annotated[dict[str, Policy], checked(_known_categories)] = Field(
        default_factory=lambda: {"hate": "refuse", "sexual": "refuse", "violence": "refuse", "self_harm": "flag",
                                 "abuse": "mask", "personal_attack": "mask"},
        description=f"policy per content category ({', '.join(CATEGORIES)}): allow, flag, mask or refuse")
    default: Policy = Field("flag", description="policy of the categories `content` leaves out")
    words: Path | None = Field(None, description="a word list replacing the default (category<TAB>entry per line)")
    extra_words: Path | None = Field(None, description="a word list added to the default")
    classifier: Literal["profanity-check"] | None = Field(None, description="an English abuse classifier after the word lists")
    threshold: float = Field(0.9, gt=0, le=1, description="the classifier's probability that counts as abuse")
    pii: Policy = Field("mask", description="personal information in prompts and outputs: allow, flag, mask or refuse")
    pii_types: PiiTypes = Field(default_factory=lambda: list(PII_DEFAULT), description=f"among {', '.join(TYPES)}")


class Safety:
    """`Safety()` is the default policy; `Safety(content={"abuse": "refuse"}, pii="allow")` changes it;
    `Safety.load("policy.yaml")` reads one (YAML or JSON with the fields of `SafetyConfig`)."""

    def __init__(self, config: SafetyConfig | None = None, **fields: Any) -> None:
        try:
            self.config = config if config is not None else SafetyConfig(**fields)
        except ValidationError as e:
            raise ConfigError("invalid safety policy: " + "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'policy'}: {err['msg']}" for err in e.errors())) from None
        c = self.config
        self.filter = ContentFilter(c.content, default=c.default, words=c.words, extra_words=c.extra_words,
                                    classifier=c.classifier, threshold=c.threshold)
        self._redactor = Redactor("mask", c.pii_types)
        self.counts: Counter[str] = Counter()

    @classmethod
    def load(cls, spec: str | Path) -> Safety:
        """`default` or a YAML / JSON file of `SafetyConfig` fields."""
        if str(spec) == "default":
            return cls()
        import yaml

        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"safety policy {spec!r} is neither 'default' nor a file; write one (YAML or JSON, "
                              f"fields: {', '.join(SafetyConfig.model_fields)}) or pass 'default'")
        try:
            fields = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"safety policy {path} is not valid UTF-8 YAML or JSON: {e}") from None
        if not isinstance(fields, dict):
            raise ConfigError(f"safety policy {path} must be a mapping of {', '.join(SafetyConfig.model_fields)}")
        base = path.parent
        for key in ("words", "extra_words"):  # relative to the policy file
            if isinstance(fields.get(key), str):
                fields[key] = str(base / fields[key])
        return cls(**fields)

    def _screen(self, text: str, where: str, count: bool = True) -> tuple[str, int | None, list[str]]:
        """The text with masks applied, where its first refused span starts (None: nothing refused),
        and the refused categories; `count` adds what was found to `counts`."""
        verdict = self.filter.verdict(text, self.filter.hits(text))
        if count:
            self.counts.update(f"{where}:{h.category}" for h in verdict.hits)
        refused = self.filter.refused(verdict)
        cut = min((h.start for h in refused), default=None)
        categories = sorted({h.category for h in refused})
        if self.config.pii != "allow":
            spans = detect(text, self._redactor.types)
            if count:
                self.counts.update(f"{where}:pii:{s.type}" for s in spans)
            if self.config.pii == "refuse" and spans:
                cut = min([spans[0].start] + ([cut] if cut is not None else []))
                categories.append("pii")
        masked = self.filter.masked(text, verdict, cut)
        if self.config.pii == "mask":
            masked = self._redactor(masked) or ""  # masking never drops
        return masked, cut, categories

    def screen_prompt(self, text: str) -> str:
        """The prompt as the model may read it (masked), or SafetyError when the policy refuses it."""
        masked, cut, categories = self._screen(text, "input")
        if cut is not None:
            raise SafetyError(f"the prompt was refused by the safety policy: it holds {', '.join(categories)} "
                              "(change the policy or the prompt)", categories)
        return masked

    def screen_output(self, text: str, final: bool = True) -> tuple[str, bool]:
        """The output as it may be shown: masked, and cut before its first refused span (True when cut).
        A stream screens its growing text with `final=False` (not counted) and the whole text once."""
        masked, cut, _ = self._screen(text, "output", count=final)
        return masked, cut is not None

    def __call__(self, text: str) -> str | None:
        """For files (`textmill redact --safety`): the masked text, or None where the policy refuses it."""
        masked, cut, _ = self._screen(text, "input")
        return None if cut is not None else masked


__all__ = ["PII_DEFAULT", "STREAM_HOLD", "Safety", "SafetyConfig", "SafetyError"]
