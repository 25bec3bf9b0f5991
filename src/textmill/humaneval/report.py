"""What a study's judgements say: per-system means with 95% intervals, agreement between raters
(Krippendorff's alpha, ordinal), pairwise win rates and Bradley-Terry strengths; CSV export."""

from __future__ import annotations

import csv
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..files import replacing
from .study import CRITERIA, Study


def mean_interval(values: list[float]) -> dict[str, Any]:
    """Mean and its 95% t-interval (None with fewer than two values)."""
    from scipy import stats

    n = len(values)
    if not n:
        return {"n": 0, "mean": None, "low": None, "high": None}
    m = float(np.mean(values))
    if n < 2:
        return {"n": n, "mean": m, "low": None, "high": None}
    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return {"n": n, "mean": m, "low": m - half, "high": m + half}


def alpha(ratings: list[dict[str, Any]], criterion: str) -> float | None:
    """Krippendorff's alpha (ordinal) over the items rated by at least two raters; None if there are none."""
    import krippendorff

    raters = sorted({r["rater"] for r in ratings})
    items = sorted({r["item"] for r in ratings})
    data = np.full((len(raters), len(items)), np.nan)
    ri, ii = {r: k for k, r in enumerate(raters)}, {i: k for k, i in enumerate(items)}
    for r in ratings:
        data[ri[r["rater"]], ii[r["item"]]] = r[criterion]
    if len(raters) < 2 or not ((~np.isnan(data)).sum(0) >= 2).any():
        return None
    if len(np.unique(data[~np.isnan(data)])) < 2:  # everyone gave one value: agreement is perfect but alpha undefined
        return 1.0
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))


def bradley_terry(systems: list[str], prefs: list[dict[str, Any]]) -> dict[str, float] | None:
    """Each system's Bradley-Terry strength (mean 0, natural log scale; a tie counts as a win each way),
    fitted by choix's iterative Luce spectral ranking with a little regularisation; None without preferences."""
    import choix

    index = {s: k for k, s in enumerate(systems)}
    comparisons = []
    for p in prefs:
        a, b = index[p["system_a"]], index[p["system_b"]]
        if p["choice"] in ("a", "tie"):
            comparisons.append((a, b))
        if p["choice"] in ("b", "tie"):
            comparisons.append((b, a))
    if not comparisons:
        return None
    params = choix.ilsr_pairwise(len(systems), comparisons, alpha=0.01)
    return {s: float(params[index[s]] - np.mean(params)) for s in systems}


def report(path: str | Path) -> dict[str, Any]:
    study = Study(path)
    ratings, prefs, systems = study.ratings(), study.preferences(), study.systems()
    per_system = {s: {c: mean_interval([r[c] for r in ratings if r["system"] == s]) for c in CRITERIA} for s in systems}
    pairs = []
    for a, b in combinations(systems, 2):
        wins_a = wins_b = ties = 0
        for p in prefs:
            if {p["system_a"], p["system_b"]} != {a, b}:
                continue
            if p["choice"] == "tie":
                ties += 1
            elif (p["choice"] == "a") == (p["system_a"] == a):
                wins_a += 1
            else:
                wins_b += 1
        total = wins_a + wins_b + ties
        pairs.append({"a": a, "b": b, "wins_a": wins_a, "wins_b": wins_b, "ties": ties,
                      "win_rate_a": (wins_a + ties / 2) / total if total else None})
    return {"study": str(path), "raters": sorted({r["rater"] for r in ratings} | {p["rater"] for p in prefs}),
            "ratings": len(ratings), "preferences": len(prefs), "tasks": len(study.tasks()), "systems": per_system,
            "alpha": {c: alpha(ratings, c) for c in CRITERIA}, "pairwise": pairs,
            "bradley_terry": bradley_terry(systems, prefs)}


def export_csv(path: str | Path, out_dir: str | Path) -> list[Path]:
    """ratings.csv, preferences.csv and systems.csv (the means and intervals) in `out_dir`."""
    study, out_dir = Study(path), Path(out_dir)
    summary = report(path)
    rows = {"ratings.csv": study.ratings(), "preferences.csv": study.preferences(),
            "systems.csv": [{"system": s, "criterion": c, **v} for s, crit in summary["systems"].items() for c, v in crit.items()]}
    written = []
    for name, data in rows.items():
        fields = list(data[0]) if data else {"ratings.csv": ["rater", "system", "item", "prompt", "text", *CRITERIA, "at"],
                                             "preferences.csv": ["rater", "pair", "system_a", "system_b", "prompt", "choice",
                                                                 "at"]}.get(name, ["system", "criterion"])
        with replacing(out_dir / name) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(data)
        written.append(out_dir / name)
    return written
