"""One summary of the content-creation benchmarks, from their own results (nothing is rerun):
summarization.py, dialogue.py with seq2seq_tasks.py, style_transfer_markers.py with style_transfer_yelp.py.
Writes results/content_creation.json; ROUGE and BLEU in points, accuracy in percent.

    python benchmarks/content_creation.py
"""

from __future__ import annotations

import json
from pathlib import Path

from common import save

RESULTS = Path(__file__).parent / "results"


def read(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def rouge(row: dict) -> dict:
    return {k: round(row[k], 2) for k in ("rouge1", "rouge2", "rougeL")}


def dialogue_scores(row: dict) -> dict:
    out = {"bleu1": round(row["bleu_1"], 2), "bleu2": round(row["bleu_2"], 2), "distinct2": round(row["distinct_2"], 4)}
    return {**out, **({"perplexity": round(row["perplexity"], 1)} if row.get("perplexity") else {})}


def main() -> None:
    summary: dict = {}
    rows = read("summarization").get("rows", [])
    if rows:
        lead3 = next(r for r in rows if r["system"] == "lead-3")
        systems = [r for r in rows if r["system"].startswith(("extractive", "prompted")) and r["articles"] == lead3["articles"]]
        best = max(systems, key=lambda r: r["rouge1"])
        summary["summarization"] = {"data": "BBC News Summary, 201 test articles", "lead3": rouge(lead3),
                                    "best": {"system": best["system"], **rouge(best)},
                                    "oracle": rouge(next(r for r in rows if "oracle" in r["system"])),
                                    "from_scratch": rouge(next(r for r in rows if "scratch" in r["system"]))}
        abstractive = {key: next((r for r in rows if r["system"].startswith(prefix)), None) for key, prefix in
                       (("zero_shot", "prompted SmolLM2"), ("lora", "SmolLM2-135M-Instruct + LoRA"), ("lead3", "lead-3 on the same"))}
        if all(abstractive.values()):
            summary["summarization"]["abstractive"] = {"articles": abstractive["lora"]["articles"],
                                                       **{k: {"system": r["system"], **rouge(r)} for k, r in abstractive.items()}}
    scratch = next((r for r in read("seq2seq_tasks").get("rows", []) if r.get("task") == "dailydialog"), None)
    dialogue = read("dialogue").get("rows", [])
    if scratch:
        summary["dialogue"] = {"from_scratch": {"system": "Transformer 3+3, 20 min (seq2seq_tasks, all test pairs)",
                                                **dialogue_scores(scratch)}}
        pretrained = [r for r in dialogue if "SmolLM2" in r["system"]]
        if pretrained:
            best = max(pretrained, key=lambda r: r["bleu_1"])
            summary["dialogue"]["best"] = {"system": best["system"], **dialogue_scores(best)}
            summary["dialogue"]["rows"] = [{"system": r["system"], **dialogue_scores(r)} for r in dialogue[1:]]
    transfer = [r for r in read("style_transfer_markers").get("rows", []) if r["system"].startswith("marker transfer")]
    if transfer:
        main_row = transfer[0]
        summary["transfer"] = {"best": {"system": main_row["system"], "accuracy": round(main_row["accuracy (judge B)"], 1),
                                        "bleu_source": round(main_row["bleu_to_source"], 1),
                                        "judge": "TF-IDF classifier on dev half B (the transfer fitted on half A)",
                                        "accuracy_other_judges": {k: round(v, 1) for k, v in main_row.items()
                                                                  if k.startswith("accuracy (") and k != "accuracy (judge B)"},
                                        "perplexity": round(main_row["perplexity"], 1)}}
        cvae = next((r for r in read("style_transfer_yelp").get("rows", []) if r["system"] == "cvae transfer"), None)
        if cvae:
            summary["transfer"]["cvae"] = {"accuracy": cvae["accuracy"], "bleu_source": round(cvae["bleu_to_source"], 1)}
    save("content_creation", summary)
    for task, parts in summary.items():
        print(task)
        for key, value in parts.items():
            print(f"  {key}: {json.dumps(value)}")


if __name__ == "__main__":
    main()
