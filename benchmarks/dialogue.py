"""Dialogue replies on DailyDialog from a pretrained chat model, zero-shot and fine-tuned with LoRA
on the training dialogues as chats, beside a from-scratch Transformer; and the outputs of a human
evaluation study of the three.

The pairs are seq2seq_tasks' (`data.task: dialogue`, the three turns before each reply, the test
dialogues); `--pairs` of them are drawn with seed 0. The model reads the turns as a chat, the last
one the user's, after a system message asking for a short everyday reply; the reply is sampled
(temperature 0.7, top-p 0.9, seed 0) up to 40 tokens and its first line kept. The prompt was written
once, not tuned on these pairs. BLEU-1/2 (sacrebleu), distinct-1/2 (over all replies of the sample,
so they depend on the sample's size: the human replies of the same sample are the reference point)
and mean length in words.

The fine-tune (`--minutes`, default 40; skipped when `--run` already holds one) is what a user runs:
`textmill train` on `data.task: dialogue` with `train.init_from` the instruct model, which reads
each training pair as the same chat (the same system message) and learns the reply only (LoRA rank
16 on every linear layer, float32). Perplexity is of the references' tokens given their chats.
The from-scratch Transformer is configs/transformer/dailydialog.yaml in float32 for `--scratch-minutes`
(trained when `--scratch-run` holds none), decoded with beam 5. The three systems' replies to the
first `--study` histories go to results/dialogue_study/ (one `textmill humaneval create` input file
a system) and into a study under the runs' directory, for real raters.

    python benchmarks/dialogue.py [--pairs 200] [--source embedded:smollm2-135m-instruct] [--run runs/dialogue-smollm2]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from common import SHARED_DATA, print_table, save

import textmill
from textmill import humaneval
from textmill.config import DataConfig
from textmill.data.datasets import ChatDataset
from textmill.data.tasks import build_task
from textmill.evaluation import score_pairs
from textmill.evaluation.metrics import bleu, distinct_n, metric_tokens, perplexity
from textmill.training.objectives import stream_nll

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
SYSTEM = "You are chatting with a friend. Reply to the last message in one short, natural sentence."
DATA = SHARED_DATA / "dailydialog"
STUDY = RESULTS / "dialogue_study"
SYSTEMS = ("from-scratch", "zero-shot", "fine-tuned")


def finetune_config(source: str, minutes: float) -> dict:
    """LoRA on the training dialogues' replies as chats, with the zero-shot run's system message."""
    return {"model": {"family": "gpt", "context": 256},
            "data": {"source": str(DATA / "dialogues_train.txt"), "valid_source": str(DATA / "dialogues_validation.txt"),
                     "task": "dialogue", "instruction": SYSTEM},
            "train": {"init_from": source, "max_steps": 700, "max_minutes": minutes, "batch_size": 16, "lr": 3e-4,
                      "min_lr": 3e-5, "warmup_steps": 30, "weight_decay": 0.0, "eval_every": 100, "eval_batches": 10,
                      "lora": {"rank": 16, "alpha": 32}}}


def scores(replies: list[str], references: list[str]) -> dict:
    return {"bleu_1": bleu(replies, references, 1)[0], "bleu_2": bleu(replies, references, 2)[0],
            "distinct_1": distinct_n(replies, 1), "distinct_2": distinct_n(replies, 2),
            "mean_words": sum(len(metric_tokens(r)) for r in replies) / len(replies)}


def sampled_replies(gen, task, histories: list[str], batch_size: int) -> tuple[list[str], float]:
    """Each history's reply, sampled (temperature 0.7, top-p 0.9, seed = its batch's start), first
    line kept; and the seconds a reply took."""
    start, replies = time.perf_counter(), []
    for i in range(0, len(histories), batch_size):
        batch = [task.messages(h) for h in histories[i:i + batch_size]]
        out = gen.generate(batch, seed=i, temperature=0.7, top_p=0.9, max_new_tokens=40, stop=["\n"])
        replies += [" ".join(r.split()) for r in out]
    return replies, (time.perf_counter() - start) / len(histories)


def reference_perplexity(gen, task, pairs: list[tuple[str, str]]) -> float:
    """Perplexity of the references' tokens (and end of turn) given their chats."""
    data, _ = ChatDataset.encode(pairs, task, gen.tokenizer, context=256, what="evaluation")
    return perplexity(stream_nll(gen.model, data, 16)["val_loss"])


def scratch_rows(run: Path, pairs: list[tuple[str, str]], minutes: float) -> tuple[dict, list[str]]:
    """The from-scratch Transformer (configs/transformer/dailydialog.yaml in float32, `minutes` of
    training, trained first when `run` holds none): beam search as seq2seq_tasks.py decodes."""
    if not (run / "model.safetensors").is_file():
        textmill.train(ROOT / "configs/transformer/dailydialog.yaml", run, overwrite=True,
                       overrides=["train.precision=fp32", f"train.max_minutes={minutes}",
                                  f"data.source={DATA / 'dialogues_train.txt'}",
                                  f"data.valid_source={DATA / 'dialogues_validation.txt'}"])
    gen = textmill.load(run)
    start = time.perf_counter()
    result, predictions = score_pairs(gen, pairs, num_beams=5, max_new_tokens=40)
    row = {**scores(predictions, [r for _, r in pairs]), "perplexity": result["perplexity"],
           "seconds_per_reply": (time.perf_counter() - start) / len(pairs)}
    return row, predictions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--source", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--run", default="runs/dialogue-smollm2", help="the fine-tuned run (trained first when absent)")
    ap.add_argument("--minutes", type=float, default=40.0, help="the fine-tune's budget")
    ap.add_argument("--scratch-run", default="runs/dialogue-transformer", help="the from-scratch run (trained when absent)")
    ap.add_argument("--scratch-minutes", type=float, default=20.0)
    ap.add_argument("--study", type=int, default=20, help="histories in the human-evaluation study")
    ap.add_argument("--train-only", action="store_true")
    args = ap.parse_args()
    test = DATA / "dialogues_test.txt"
    if not test.is_file():
        sys.exit(f"{test} is absent")
    run = Path(args.run)
    if not (run / "model.safetensors").is_file():
        start = time.perf_counter()
        result = textmill.train(finetune_config(args.source, args.minutes), run, overwrite=True)
        (run / "benchmark_train.json").write_text(json.dumps({"minutes": (time.perf_counter() - start) / 60,
                                                             "steps": result.steps}))
    if args.train_only:
        return
    task = build_task(DataConfig(task="dialogue", source=str(test), instruction=SYSTEM))
    pairs = task.pairs(str(test), what="test")
    sample = random.Random(0).sample(pairs, args.pairs)
    histories, references = [h for h, _ in sample], [r for _, r in sample]
    outputs = {"human": references}
    rows = [{"system": f"human replies (the sample's references; {args.pairs} pairs)", **scores(references, references)}]
    for name, source in (("zero-shot", args.source), ("fine-tuned", str(run))):
        gen = textmill.load(source)
        outputs[name], seconds = sampled_replies(gen, task, histories, args.batch_size)
        rows.append({"system": f"SmolLM2-135M-Instruct, {name}", **scores(outputs[name], references),
                     "perplexity": reference_perplexity(gen, task, sample), "seconds_per_reply": seconds})
    trained = json.loads((run / "benchmark_train.json").read_text())
    rows[-1]["system"] += f" (LoRA, {trained['minutes']:.0f} min, {trained['steps']} steps)"
    scratch, outputs["from-scratch"] = scratch_rows(Path(args.scratch_run), sample, args.scratch_minutes)
    rows.append({"system": f"Transformer 3+3 from scratch, {args.scratch_minutes:.0f} min, beam 5", **scratch})
    print_table(rows, ["system", "bleu_1", "bleu_2", "distinct_1", "distinct_2", "mean_words", "perplexity",
                       "seconds_per_reply"])
    chosen = range(min(args.study, len(sample)))
    STUDY.mkdir(exist_ok=True)
    for name in SYSTEMS:  # what `textmill humaneval create` reads: one JSONL file of {"prompt", "text"} rows a system
        rows_of = (json.dumps({"prompt": histories[i], "text": outputs[name][i] or "(no reply)"}) for i in chosen)
        (STUDY / f"{name}.jsonl").write_text("".join(r + "\n" for r in rows_of), encoding="utf-8")
    study = humaneval.create([o for name in SYSTEMS for o in humaneval.read_jsonl_outputs(STUDY / f"{name}.jsonl", name)],
                             run.parent / "dialogue_study.db", overwrite=True)
    print(f"human-evaluation study ({len(chosen)} histories, {len(SYSTEMS)} systems): {study}")
    save("dialogue", {"pairs": args.pairs, "system_prompt": SYSTEM, "finetune": finetune_config(args.source, args.minutes),
                      "rows": rows, "study": {"outputs": str(STUDY.relative_to(ROOT)), "histories": len(chosen),
                                              "systems": list(SYSTEMS)},
                      "examples": [{"history": h, "reference": r, **{k: outputs[k][i] for k in outputs if k != "human"}}
                                   for i, (h, r) in enumerate(list(zip(histories, references))[:8])]})


if __name__ == "__main__":
    main()
