"""Rule and template grammars: weighted alternatives, nested rules, optional parts, slot lexicons.

A grammar is a YAML file:

    start: S                       # the start rule when there are no labels (default S)
    labels:                        # optional: one start rule per label (intent, sentiment, ...)
      book: BOOK
      cancel: CANCEL
    max_depth: 8                   # rule nesting limit; deeper derivations choose terminating alternatives
    rules:
      BOOK:
        - "I'd like a table for {count} [people ]at {time}"
        - {text: "Book <SEATS> (tonight|tomorrow)", weight: 2}
      SEATS: ["{count} seats", "a table for {count}"]
    slots:
      count: [two, three, four]     # inline lexicon (entries may be {value: ..., weight: ...})
      time: {file: times.txt}       # one value per line, relative to the grammar file

Inside an alternative: `<RULE>` expands a rule, `{slot}` draws a slot value (returned as a
structured field with its character span), `[...]` is optional (kept with probability 0.5), and
`(a|b)` chooses inline; `\\` escapes any of `<>{}[]()|\\`. Text is concatenated exactly as written, so
Chinese needs no spaces; runs of spaces left by omitted parts collapse to one.
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from ..errors import ConfigError, GenerationError

# -- the parsed form of an alternative ------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Ref:
    rule: str


@dataclass(frozen=True)
class Slot:
    name: str


@dataclass(frozen=True)
class Optional_:
    body: Seq


@dataclass(frozen=True)
class Choice:
    options: tuple[Seq, ...]


Item = Union[Text, Ref, Slot, Optional_, Choice]
Seq = tuple  # tuple[Item, ...]

_CLOSE = {"[": "]", "(": ")"}


def parse(source: str, where: str) -> Seq:
    """Parse one alternative into a sequence of items."""
    return _parse_seq(source, 0, where, stop="")[0]


def _parse_seq(s: str, i: int, where: str, stop: str) -> tuple[Seq, int]:
    """Items from s[i] until one of the `stop` characters (not consumed) or the end."""
    items: list[Any] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            items.append(Text("".join(text)))
            text.clear()

    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            text.append(s[i + 1])
            i += 2
        elif c in stop:
            break
        elif c in "<{":
            close = ">" if c == "<" else "}"
            j = s.find(close, i + 1)
            name = s[i + 1:j].strip() if j > 0 else ""
            if j < 0 or not name:
                raise ConfigError(f"{where}: unclosed or empty {c}{close} at character {i} of {s!r}")
            flush()
            items.append(Ref(name) if c == "<" else Slot(name))
            i = j + 1
        elif c in "[(":
            flush()
            options = []
            i += 1
            while True:
                body, i = _parse_seq(s, i, where, stop=_CLOSE[c] + ("|" if c == "(" else ""))
                options.append(body)
                if i >= len(s):
                    raise ConfigError(f"{where}: {c!r} is never closed in {s!r}")
                if s[i] == "|":
                    i += 1
                    continue
                i += 1  # the closing bracket
                break
            items.append(Optional_(options[0]) if c == "[" else Choice(tuple(options)))
        elif c in "]>)}|" and not stop:
            raise ConfigError(f"{where}: unexpected {c!r} at character {i} of {s!r}; escape it as '\\{c}'")
        else:
            text.append(c)
            i += 1
    flush()
    return tuple(items), i


# -- the grammar ------------------------------------------------------------------------------


@dataclass
class Alternative:
    seq: Seq
    weight: float
    source: str


@dataclass
class Sample:
    text: str
    label: str | None
    slots: dict[str, str | list[str]] = field(default_factory=dict)
    spans: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "slots": self.slots, "spans": self.spans}


def _weighted(entries: Any, where: str, key: str) -> tuple[list[Any], list[float]]:
    """Entries that are plain values or {key: value, weight: w}; weights validated."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: needs a non-empty list of alternatives")
    values, weights = [], []
    for n, e in enumerate(entries, 1):
        w = 1.0
        if isinstance(e, dict):
            unknown = set(e) - {key, "weight"}
            if key not in e or unknown:
                raise ConfigError(f"{where}, entry {n}: use {{{key}: ..., weight: ...}} (got keys {sorted(e)})")
            w = e.get("weight", 1.0)
            e = e[key]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigError(f"{where}, entry {n}: weight must be a number >= 0, got {w!r}")
        if not isinstance(e, (str, int, float)) or isinstance(e, bool):
            raise ConfigError(f"{where}, entry {n}: expected text, got {type(e).__name__}")
        values.append(str(e))
        weights.append(float(w))
    if sum(weights) <= 0:
        raise ConfigError(f"{where}: all weights are 0; at least one must be positive")
    return values, weights


class TemplateGrammar:
    """A validated grammar that samples or enumerates labelled sentences with slot fields."""

    def __init__(self, spec: dict[str, Any], base_dir: Path | None = None, name: str = "grammar") -> None:
        if not isinstance(spec, dict):
            raise ConfigError(f"{name}: a grammar is a mapping with 'rules' (and optionally 'slots', 'labels', 'start')")
        unknown = set(spec) - {"start", "labels", "rules", "slots", "max_depth"}
        if unknown:
            raise ConfigError(f"{name}: unknown keys {sorted(unknown)}; allowed: start, labels, rules, slots, max_depth")
        self.name = name
        self.max_depth = spec.get("max_depth", 10)
        if not isinstance(self.max_depth, int) or self.max_depth < 1:
            raise ConfigError(f"{name}: max_depth must be a positive integer")
        rules = spec.get("rules")
        if not isinstance(rules, dict) or not rules:
            raise ConfigError(f"{name}: 'rules' must map rule names to lists of alternatives")
        self.rules: dict[str, list[Alternative]] = {}
        for rule, alts in rules.items():
            values, weights = _weighted(alts if isinstance(alts, list) else [alts], f"{name}: rule {rule!r}", "text")
            for n, v in enumerate(values, 1):
                if not v.strip():
                    raise ConfigError(f"{name}: rule {rule!r}, alternative {n} is empty; write an optional part [...] instead")
            self.rules[str(rule)] = [Alternative(parse(v, f"{name}: rule {rule!r}, alternative {n}"), w, v)
                                     for n, (v, w) in enumerate(zip(values, weights), 1)]
        self.slots: dict[str, tuple[list[str], list[float]]] = {}
        for slot, entries in (spec.get("slots") or {}).items():
            if isinstance(entries, dict) and "file" in entries:
                path = (base_dir or Path.cwd()) / entries["file"]
                if not path.is_file():
                    raise ConfigError(f"{name}: slot {slot!r} reads {path}, which does not exist")
                entries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            self.slots[str(slot)] = _weighted(entries, f"{name}: slot {slot!r}", "value")
        labels = spec.get("labels")
        if labels is not None and (not isinstance(labels, dict) or not labels):
            raise ConfigError(f"{name}: 'labels' must map each label to its start rule")
        self.starts: dict[str | None, str] = {str(k): str(v) for k, v in labels.items()} if labels else \
            {None: str(spec.get("start", "S"))}
        self._validate()

    @classmethod
    def from_file(cls, path: str | Path) -> TemplateGrammar:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"grammar file {path} does not exist")
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        return cls(spec, path.parent, str(path))

    @property
    def labels(self) -> list[str | None]:
        return list(self.starts)

    # -- validation ------------------------------------------------------------------------------
    def _refs(self, seq: Seq) -> Iterator[Ref | Slot]:
        for item in seq:
            if isinstance(item, (Ref, Slot)):
                yield item
            elif isinstance(item, Optional_):
                yield from self._refs(item.body)
            elif isinstance(item, Choice):
                for option in item.options:
                    yield from self._refs(option)

    def _validate(self) -> None:
        def unknown(kind: str, name: str, known: list[str], where: str) -> ConfigError:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; defined: {', '.join(sorted(known))}"
            return ConfigError(f"{self.name}: {kind} {name!r} is not defined ({where}){hint}")

        for label, start in self.starts.items():
            if start not in self.rules:
                raise unknown("start rule", start, list(self.rules), f"label {label!r}" if label else "start")
        for rule, alts in self.rules.items():
            for n, alt in enumerate(alts, 1):
                for ref in self._refs(alt.seq):
                    if isinstance(ref, Ref) and ref.rule not in self.rules:
                        raise unknown("rule", ref.rule, list(self.rules), f"used in rule {rule!r}, alternative {n}")
                    if isinstance(ref, Slot) and ref.name not in self.slots:
                        raise unknown("slot", ref.name, list(self.slots), f"used in rule {rule!r}, alternative {n}")
        self.min_depth = self._min_depths()
        stuck = sorted(r for r, d in self.min_depth.items() if d == math.inf)
        if stuck:
            raise ConfigError(f"{self.name}: rules {stuck} can never finish: every alternative refers back to "
                              "them; give each at least one alternative that ends without recursion")
        deepest = max(self.min_depth[s] for s in self.starts.values())
        if deepest > self.max_depth:
            raise ConfigError(f"{self.name}: the shortest derivation needs depth {deepest}, more than max_depth={self.max_depth}")

    def _seq_depth(self, seq: Seq, depth: dict[str, float]) -> float:
        """The least rule depth needed to expand `seq` (optional parts may be dropped)."""
        worst = 0.0
        for item in seq:
            if isinstance(item, Ref):
                worst = max(worst, depth[item.rule])
            elif isinstance(item, Choice):
                worst = max(worst, min(self._seq_depth(o, depth) for o in item.options))
        return worst

    def _min_depths(self) -> dict[str, float]:
        depth = {r: math.inf for r in self.rules}
        changed = True
        while changed:  # fixpoint: a rule's depth is 1 + its cheapest alternative
            changed = False
            for rule, alts in self.rules.items():
                best = 1 + min(self._seq_depth(a.seq, depth) for a in alts)
                if best < depth[rule]:
                    depth[rule], changed = best, True
        return depth

    # -- sampling -----------------------------------------------------------------------------------
    def _expand(self, seq: Seq, budget: int, rng: random.Random, out: list[tuple[str, str | None]]) -> None:
        for item in seq:
            if isinstance(item, Text):
                out.append((item.value, None))
            elif isinstance(item, Slot):
                values, weights = self.slots[item.name]
                out.append((rng.choices(values, weights)[0], item.name))
            elif isinstance(item, Ref):
                self._expand_rule(item.rule, budget, rng, out)
            elif isinstance(item, Optional_):
                if self._seq_depth(item.body, self.min_depth) <= budget and rng.random() < 0.5:
                    self._expand(item.body, budget, rng, out)
            else:
                options = [o for o in item.options if self._seq_depth(o, self.min_depth) <= budget]
                self._expand(rng.choice(options), budget, rng, out)

    def _expand_rule(self, rule: str, budget: int, rng: random.Random, out: list) -> None:
        # only alternatives that can still finish within the remaining depth
        alts = [a for a in self.rules[rule] if self._seq_depth(a.seq, self.min_depth) <= budget - 1]
        weights = [a.weight for a in alts]
        alt = rng.choices(alts, weights)[0] if sum(weights) > 0 else rng.choice(alts)
        self._expand(alt.seq, budget - 1, rng, out)

    @staticmethod
    def _assemble(pieces: list[tuple[str, str | None]], label: str | None) -> Sample:
        text, spans, slots = "", [], {}
        for piece, slot in pieces:
            if text.endswith(" ") and piece.startswith(" "):
                piece = piece.lstrip(" ")
            if not piece:
                continue
            start = len(text)
            text += piece
            if slot is not None:
                spans.append({"slot": slot, "value": piece, "start": start, "end": len(text)})
                prev = slots.get(slot)
                slots[slot] = piece if prev is None else [*([prev] if isinstance(prev, str) else prev), piece]
        lead = len(text) - len(text.lstrip(" "))
        text = text.strip(" ")
        for s in spans:
            s["start"] -= lead
            s["end"] -= lead
        return Sample(text, label, slots, spans)

    def sample_one(self, label: str | None, rng: random.Random) -> Sample:
        pieces: list[tuple[str, str | None]] = []
        self._expand_rule(self.starts[self._label(label)], self.max_depth, rng, pieces)
        return self._assemble(pieces, label)

    def _label(self, label: str | None) -> str | None:
        if label not in self.starts:
            known = ", ".join(str(k) for k in self.starts)
            raise ConfigError(f"unknown label {label!r}; this grammar's labels: {known}")
        return label

    def generate(self, n: int = 10, *, seed: int | None = None, label: str | None = None, unique: bool = True,
                 max_attempts: int | None = None) -> list[Sample]:
        """`n` samples for `label`, or `n` for each label when the grammar has labels and none is given.

        With `unique`, duplicates are redrawn up to `max_attempts` (default 20 n) times per label."""
        if n < 1:
            raise ConfigError(f"n must be >= 1, got {n}")
        rng = random.Random(seed)
        labels = [self._label(label)] if label is not None or None in self.starts else list(self.starts)
        out: list[Sample] = []
        for lab in labels:
            seen: set[str] = set()
            got: list[Sample] = []
            attempts = 0
            limit = max_attempts or 20 * n
            while len(got) < n:
                if attempts >= limit:
                    total = self.count(lab, limit=100_000)
                    can = f"it can produce at most {total} distinct sentences" if total is not None else "it produced too few"
                    raise GenerationError(
                        f"label {lab!r}: only {len(got)} distinct sentences after {attempts} attempts ({can}); "
                        "ask for fewer, pass unique=False (--no-unique), or add alternatives and slot values")
                attempts += 1
                s = self.sample_one(lab, rng)
                if unique and s.text in seen:
                    continue
                seen.add(s.text)
                got.append(s)
            out.extend(got)
        return out

    # -- enumeration -------------------------------------------------------------------------------
    def _all(self, seq: Seq, budget: int) -> Iterator[list[tuple[str, str | None]]]:
        if not seq:
            yield []
            return
        head, rest = seq[0], seq[1:]
        for first in self._all_item(head, budget):
            for tail in self._all(rest, budget):
                yield first + tail

    def _all_item(self, item: Any, budget: int) -> Iterator[list[tuple[str, str | None]]]:
        if isinstance(item, Text):
            yield [(item.value, None)]
        elif isinstance(item, Slot):
            for v, w in zip(*self.slots[item.name]):
                if w > 0:
                    yield [(v, item.name)]
        elif isinstance(item, Ref):
            for alt in self.rules[item.rule]:
                if alt.weight > 0 and self._seq_depth(alt.seq, self.min_depth) <= budget - 1:
                    yield from self._all(alt.seq, budget - 1)
        elif isinstance(item, Optional_):
            yield []
            if self._seq_depth(item.body, self.min_depth) <= budget:
                yield from self._all(item.body, budget)
        else:
            for o in item.options:
                if self._seq_depth(o, self.min_depth) <= budget:
                    yield from self._all(o, budget)

    def enumerate(self, label: str | None = None, limit: int = 100_000) -> list[Sample]:
        """Every distinct sentence (depth-limited) for `label`, or for each label; an error past `limit`."""
        labels = [self._label(label)] if label is not None or None in self.starts else list(self.starts)
        out: list[Sample] = []
        for lab in labels:
            seen: set[str] = set()
            for pieces in self._all((Ref(self.starts[lab]),), self.max_depth):
                s = self._assemble(pieces, lab)
                if s.text not in seen:
                    seen.add(s.text)
                    out.append(s)
                    if len(seen) > limit:
                        raise GenerationError(f"label {lab!r} has more than {limit} sentences; sample with generate() instead")
        return out

    def count(self, label: str | None, limit: int) -> int | None:
        """The number of distinct sentences for `label`, or None if there are more than `limit`."""
        try:
            return len(self.enumerate(label, limit))
        except GenerationError:
            return None
