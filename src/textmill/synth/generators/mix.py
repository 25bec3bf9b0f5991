"""`mix:A+B[+...]`: several generators at once, each writing its share of every chunk of samples."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveFloat

from ...config import Strict
from ...errors import ConfigError
from ..filters import Candidate
from ..rows import Rows
from .base import GENERATORS, SynthGenerator, build_generator, generator_class


class MixOptions(Strict):
    shares: dict[str, PositiveFloat] | None = Field(None, description="{spec: weight}: each generator's share of the "
                                                                      "samples (default: equal)")


def split_by_shares(n: int, shares: list[float]) -> list[int]:
    """n split by the shares, largest remainders first (ties to the earlier generator)."""
    total = sum(shares)
    exact = [n * s / total for s in shares]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[:n - sum(counts)]:
        counts[i] += 1
    return counts


@GENERATORS.register("mix")
class MixGenerator(SynthGenerator):
    """Several generators at once (`mix:ngram+prompt`): every chunk of a label's samples is split among
    them by their `shares` and shuffled together, so the filters (duplicates across generators
    included) and the label's row count see one stream. Each output row names the generator that
    wrote it. Generators fail differently (an n-gram model recombines the label's own words, a
    prompted model brings words the rows never had), so a mix dilutes each one's failures.

    Options: `shares`, a generator's own options under its spec (`{ngram: {prefix: 2}, prompt:
    {descriptions: {...}}}`), and any other option for every generator of the mix that takes it
    (`temperature`, `descriptions`); an option none of them takes is an error. Specs are split at
    `+`, so a run path holding `+` cannot be a part."""

    name = "mix"
    Options = MixOptions
    takes_argument = True
    argument_name = "A+B"
    argument_required = True

    def __init__(self, argument: str | None, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        specs = [s.strip() for s in (argument or "").split("+")]
        if len(specs) < 2 or not all(specs):
            raise ConfigError(f"generator mix:{argument or ''} needs two or more generators joined by '+', "
                              "e.g. --generator mix:ngram+prompt")
        if len(set(specs)) < len(specs):
            raise ConfigError(f"generator mix:{argument} names a generator twice; give it a larger share instead "
                              "(generator_options={shares: {...}})")
        if any(s.partition(":")[0] == "mix" for s in specs):
            raise ConfigError(f"generator mix:{argument}: a mix cannot hold another mix; list all its generators in one")
        own = {k: options.pop(k) for k in [*specs, "shares"] if k in options}
        shares = own.get("shares") or dict.fromkeys(specs, 1.0)
        if not isinstance(shares, dict) or set(shares) != set(specs) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in shares.values()):
            raise ConfigError(f"generator option shares={shares!r} must give each of {specs} a positive weight, e.g. "
                              f"shares={{{', '.join(f'{s}: 1' for s in specs)}}}")
        bad = [s for s in specs if not isinstance(own.get(s, {}), dict)]
        if bad:
            raise ConfigError(f"generator mix:{argument}: the options of {bad[0]} must be a mapping, e.g. {{{bad[0]}: "
                              "{temperature: 0.8}}")
        super().__init__(argument, {"shares": shares})
        classes = [generator_class(s) for s in specs]
        taken = {k for cls in classes for k in cls.Options.model_fields}
        unknown = sorted(set(options) - taken)
        if unknown:
            raise ConfigError(f"generator mix:{argument}: option {unknown[0]} is taken by none of its generators; a mix takes "
                              f"shares, options of its generators ({', '.join(sorted(taken))}) for each one that takes "
                              f"them, and a generator's own options under its spec ({', '.join(specs)})")
        self.specs, self.shares = specs, [float(shares[s]) for s in specs]
        # an option for the whole mix goes to each generator that takes it (its own options win)
        self.parts = [build_generator(s, {**{k: v for k, v in options.items() if k in cls.Options.model_fields},
                                          **(own.get(s) or {})}) for s, cls in zip(specs, classes)]

    def train_privately(self, dp: dict[str, Any] | None, canaries: dict[str, Any] | None) -> None:
        for part in self.parts:
            part.train_privately(dp, canaries)

    def fit(self, rows: Rows, workdir: Path, chinese: bool, seed: int) -> None:
        for i, part in enumerate(self.parts):
            part.progress = self.progress
            part.fit(rows, workdir / f"mix_{i}", chinese, seed)

    def candidates(self, label: str, n: int, seed: int) -> list[Candidate]:
        out = [Candidate(t, label, source=spec)
               for i, (spec, part, k) in enumerate(zip(self.specs, self.parts, split_by_shares(n, self.shares))) if k
               for t in part.sample(label, k, seed * 31 + i)]
        random.Random(seed).shuffle(out)  # a chunk cut short at the label's count cuts every generator alike
        return out

    def sample(self, label: str, n: int, seed: int) -> list[str]:
        return [c.text for c in self.candidates(label, n, seed)]

    def trained_runs(self) -> dict[str, Path]:
        return {spec: run for spec, part in zip(self.specs, self.parts) for run in part.trained_runs().values()}

    def describe(self) -> dict[str, Any]:
        return {"name": f"mix:{self.argument}",
                "parts": [{**part.describe(), "share": share} for part, share in zip(self.parts, self.shares)]}
