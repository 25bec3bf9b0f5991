"""Content filter: detection per category on the project's labelled sets of disguised variants
(tests/data/content.txt, the development set; content_test.txt, held out; content_eval.txt, the frozen
evaluation set written before the rule changes of issue 39; content_eval2.txt, the second one, written
after them and before any later change), false flags on their hard
negatives, and how often clean text of the shared corpora is flagged (target < 0.5%); with the word
lists alone and with the profanity-check classifier.

    python benchmarks/safety_content.py [--clean 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, clean_sentences, print_table, save  # noqa: E402

from textmill.safety import CATEGORIES, ContentFilter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def labelled(name: str) -> list[tuple[str, str]]:
    lines = (ROOT / "tests/data" / name).read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t", 1)) for line in lines if line.strip() and not line.startswith("#")]  # type: ignore[misc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", type=int, default=5000)
    args = ap.parse_args()
    rows, clean = [], []
    stages = {"word lists": None, "word lists + profanity-check": "profanity-check"}
    sentences = clean_sentences(args.clean) if (SHARED_DATA / "eda_sst2").is_dir() else []
    for stage, classifier in stages.items():
        f = ContentFilter(classifier=classifier)
        for name, file in (("development", "content.txt"), ("held-out", "content_test.txt"),
                           ("frozen evaluation", "content_eval.txt"), ("second frozen evaluation", "content_eval2.txt")):
            items = labelled(file)
            found = [set(v.categories) for v in f.check_all([t for _, t in items])]
            for category in [*CATEGORIES, "none"]:
                mine = [(c, t, got) for (c, t), got in zip(items, found) if c == category]
                row = {"stage": stage, "set": name, "category": category, "texts": len(mine)}
                if category == "none":
                    row.update(category="hard negatives", flagged=sum(bool(g) for _, _, g in mine))
                    row["false_rate"] = row["flagged"] / len(mine)
                else:
                    row["detected"] = sum(category in g for _, _, g in mine)
                    row["detection"] = row["detected"] / len(mine)
                rows.append(row)
                for c, t, g in mine:
                    if (category == "none") == bool(g):
                        print(f"{stage}, {name}: {'false flag' if category == 'none' else 'missed'} [{c}] {t!r} -> {sorted(g)}")
        if sentences:
            started = time.perf_counter()
            verdicts = f.check_all([t for _, t in sentences])
            seconds = time.perf_counter() - started
            for corpus in [*sorted({c for c, _ in sentences}), "all"]:
                mine = [(t, v) for (c, t), v in zip(sentences, verdicts) if corpus in (c, "all")]
                row = {"stage": stage, "corpus": corpus, "sentences": len(mine), "flagged": sum(bool(v.hits) for _, v in mine)}
                row["rate"] = row["flagged"] / len(mine)
                row.update({k: sum(k in v.categories for _, v in mine) for k in CATEGORIES})
                clean.append(row)
            clean[-1]["sentences_per_sec"] = len(sentences) / seconds
            for (c, t), v in zip(sentences, verdicts):
                if v.hits:
                    print(f"{stage}: flagged in {c}: {[(h.category, h.text) for h in v.hits]} in {t[:90]!r}")
    print_table(rows, ["stage", "set", "category", "texts", "detected", "detection", "flagged", "false_rate"])
    if clean:
        print_table(clean, ["stage", "corpus", "sentences", "flagged", "rate", *CATEGORIES, "sentences_per_sec"])
    save("safety_content", {"labelled": rows, "clean": clean})


if __name__ == "__main__":
    main()
