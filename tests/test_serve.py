"""`textmill serve`: the official openai client against a live uvicorn server on loopback, raw HTTP for
bodies a client would never send, and the batching engine under it (requests joining a running batch
give what they give alone)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

import textmill  # noqa: E402
from textmill.decoding import parse_options  # noqa: E402
from textmill.decoding.batching import BatchEngine, Failed, Finished, Job, Started, Token  # noqa: E402
from textmill.serve.launch import model_id  # noqa: E402

from .helpers import FOREIGN, free_port, live, post, tiny_model, tiny_tokenizer  # noqa: E402

KEY = "test-key"


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama-chat")
    tok = tiny_tokenizer(chat=True)
    tiny_model("llama", len(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tiny_run, chat_dir):
    return {"tiny": textmill.load(tiny_run), "chat": textmill.load(chat_dir)}


@pytest.fixture(scope="module")
def server(models):
    with live(models, api_key=KEY, max_tokens=64, max_n=4, max_body_bytes=4096) as url:
        yield url


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)


# -- the API through the openai client ---------------------------------------------------------------
def test_models_lists_every_served_model(client):
    cards = {m.id: m for m in client.models.list()}
    assert set(cards) == {"tiny", "chat"}
    assert client.models.retrieve("chat").id == "chat"


def test_a_seeded_completion_is_what_the_python_api_gives(client, models):
    r = client.completions.create(model="tiny", prompt="First", max_tokens=20, seed=7, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert [c.text for c in r.choices] == models["tiny"].generate("First", max_new_tokens=20, seed=7, num_return_sequences=2)
    assert r.usage.prompt_tokens == 1 + len("First")  # <bos> and 5 characters, once for the n choices
    assert 2 <= r.usage.completion_tokens <= 40 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    again = client.completions.create(model="tiny", prompt="First", max_tokens=20, seed=7, n=2)
    assert [c.text for c in again.choices] == [c.text for c in r.choices]


def test_greedy_stop_and_a_list_of_prompts(client, models):
    gen = models["tiny"]
    r = client.completions.create(model="tiny", prompt=["First", "All"], max_tokens=30, temperature=0, stop=["\n"])
    assert [c.text for c in r.choices] == gen.generate(["First", "All"], max_new_tokens=30, strategy="greedy", stop=["\n"])
    assert all("\n" not in c.text for c in r.choices)


def test_logprobs_are_the_models_and_sum_with_alternatives(client, models):
    r = client.completions.create(model="tiny", prompt="First", max_tokens=5, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert len(top) == 3 and chosen == pytest.approx(max(top.values()))  # greedy: the chosen token is the top one
    ids = models["tiny"].tokenizer.encode("First" + r.choices[0].text, add_bos=True)
    import torch
    with torch.no_grad():
        logits = models["tiny"].model(torch.tensor([ids]))[0].log_softmax(-1)
    assert lp.token_logprobs[0] == pytest.approx(float(logits[len("First"), ids[len("First") + 1]]), abs=1e-4)


def test_chat_uses_the_template_and_streams_as_openai_does(client, models):
    messages = [{"role": "user", "content": "the cat sat"}]
    r = client.chat.completions.create(model="chat", messages=messages, max_tokens=8, temperature=0)
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == models["chat"].chat(messages, max_new_tokens=8, strategy="greedy")
    chunks = list(client.chat.completions.create(model="chat", messages=messages, max_tokens=8, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    body = [c for c in chunks if c.choices]
    assert all(c.choices[0].finish_reason is None for c in body[:-1]) and body[-1].choices[0].finish_reason in ("stop", "length")
    assert "".join(c.choices[0].delta.content or "" for c in body) == r.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == r.usage.total_tokens


def test_chat_logprobs(client):
    r = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "a dog"}], max_tokens=4,
                                       logprobs=True, top_logprobs=2, seed=1)
    content = r.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)


def test_attention_is_for_encoder_decoder_models(server):
    code, body = post(f"{server}/v1/textmill/attention", b'{"model": "tiny", "source": "x"}', KEY)
    assert code == 400 and "encoder-decoder" in body["error"]["message"]


def test_a_model_without_a_template_continues_a_transcript(client, models):
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Speak"}], max_tokens=10, seed=2)
    expected = models["tiny"].generate("User: Speak\nAssistant:", max_new_tokens=10, seed=2, stop=["\nUser:"])
    assert r.choices[0].message.content == expected


def test_a_streamed_completion_joins_to_the_whole_text(client, models):
    chunks = list(client.completions.create(model="tiny", prompt="All", max_tokens=25, seed=3, stream=True, n=2))
    texts = ["".join(c.choices[0].text for c in chunks if c.choices[0].index == i) for i in range(2)]
    assert texts == models["tiny"].generate("All", max_new_tokens=25, seed=3, num_return_sequences=2)
    finals = [c.choices[0] for c in chunks if c.choices[0].finish_reason]
    assert sorted(f.index for f in finals) == [0, 1]


@pytest.mark.parametrize("kwargs, status, needle", [
    (dict(model="nope", prompt="x"), 404, "tiny, chat"),
    (dict(model="tiny", prompt="x", max_tokens=1000), 400, "at most 64"),
    (dict(model="tiny", prompt="x" * 200), 400, "context is 32"),
    (dict(model="tiny", prompt="x", n=9), 400, "at most 4"),
    (dict(model="tiny", prompt="x", max_tokens=-1), 400, "max_tokens"),
    (dict(model="tiny", prompt="x", temperature=3), 400, "temperature"),
    (dict(model="tiny", prompt="x", extra_body={"tempreature": 1}), 400, "Unrecognized request argument supplied: tempreature"),
    (dict(model="tiny", prompt="x", suffix="y"), 400, "suffix"),
    (dict(model="tiny", prompt="x", extra_body={"label": "pos"}), 400, "trained without labels"),
])
def test_errors_use_openais_schema(client, kwargs, status, needle):
    with pytest.raises(openai.APIStatusError) as e:
        client.completions.create(**kwargs)
    assert e.value.status_code == status
    assert needle in e.value.body["message"] and set(e.value.body) == {"message", "type", "param", "code"}


def test_chat_errors(client):
    with pytest.raises(openai.BadRequestError, match="messages is empty"):
        client.chat.completions.create(model="chat", messages=[])
    with pytest.raises(openai.BadRequestError, match="tools"):
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "a"}],
                                       tools=[{"type": "function", "function": {"name": "f"}}])


def test_a_wrong_key_is_a_401(server):
    bad = openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with urllib.request.urlopen(f"{server}/health") as r:  # health needs no key
        assert json.loads(r.read())["status"] == "ok"


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe{}", 400, "not UTF-8"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"prompt": "x"}', 400, "model is required"),
    (b'{"model": "tiny", "prompt": 5}', 400, "prompt"),
    (b"x" * 10000, 413, "the limit is 4096"),  # small enough to be sent whole before the early answer
])
def test_bad_bodies_are_clear_errors_and_the_server_keeps_serving(server, client, body, status, needle):
    code, answer = post(f"{server}/v1/completions", body, KEY)
    assert code == status and needle in answer["error"]["message"]
    assert client.completions.create(model="tiny", prompt="F", max_tokens=2).choices


def test_metrics_count_requests_and_tokens(server, client):
    client.completions.create(model="tiny", prompt="First", max_tokens=3, temperature=0)
    req = urllib.request.Request(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"})
    text = urllib.request.urlopen(req).read().decode()
    assert 'textmill_requests_total{path="/v1/completions",status="200"}' in text
    assert 'textmill_tokens_total{kind="completion",model="tiny"}' in text
    assert 'textmill_queue_waiting{model="tiny"}' in text


# -- batching --------------------------------------------------------------------------------------
def test_concurrent_seeded_requests_give_what_they_give_alone(client, models):
    prompts = [("First", 5), ("All", 6), ("You are", 7), ("Resolved", 8), ("F", 9), ("Speak", 10)]
    alone = {p: models["tiny"].generate(p, max_new_tokens=12 + s, seed=s) for p, s in prompts}
    got: dict[str, str] = {}

    def ask(p: str, s: int) -> None:
        got[p] = client.completions.create(model="tiny", prompt=p, max_tokens=12 + s, seed=s).choices[0].text

    threads = [threading.Thread(target=ask, args=ps) for ps in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == alone


def test_merged_states_give_the_logits_of_separate_ones(models, monkeypatch):
    """Rows joined by GPT.merge step exactly as they step alone, even where fresh cache memory holds
    NaN (torch.empty gives whatever was there: the padding merge adds must be written)."""
    import torch

    from textmill.models.base import Conditioning

    model = models["tiny"].model
    start = type(model).start

    def poisoned(self, cond):
        state = start(self, cond)
        for k, v in state.kv:
            k.fill_(float("nan"))
            v.fill_(float("nan"))
        return state

    monkeypatch.setattr(type(model), "start", poisoned)
    tok = models["tiny"].tokenizer
    rows = [tok.encode(p, add_bos=True) for p in ("First Citizen", "All", "You are all")]
    with torch.no_grad():
        alone = [model.step(torch.tensor([[ids[-1]]]), model.step(torch.tensor([ids]), model.start(Conditioning(1)))[1])[0]
                 for ids in rows]
        merged = model.merge([model.step(torch.tensor([ids]), model.start(Conditioning(1)))[1] for ids in rows])
        together = model.step(torch.tensor([[ids[-1]] for ids in rows]), merged)[0]
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=1e-5)


def _collect(events: list, done: threading.Event, rows: int = 1):
    def on(ev):
        events.append(ev)
        if isinstance(ev, Failed) or sum(isinstance(e, Finished) for e in events) == rows:
            done.set()
    return on


@pytest.mark.parametrize("name", ["tiny", "chat"])
def test_a_job_joins_a_running_batch_and_gives_what_it_gives_alone(models, name):
    gen = models[name]
    engine = BatchEngine(gen, max_rows=8)
    assert engine.can_join  # gpt runs and Llama models merge states
    try:
        first, second = [], []
        first_done, second_done = threading.Event(), threading.Event()
        opts_a = parse_options(dict(max_new_tokens=30, seed=1, min_new_tokens=30))
        opts_b = parse_options(dict(max_new_tokens=10, seed=2))
        running = []
        engine.submit(Job("the cat", opts_a, _collect(first, first_done)))
        while not any(isinstance(e, Token) for e in first):
            time.sleep(0.001)
        engine.submit(Job("a dog ran", opts_b, lambda ev: (second.append(ev), running.append(engine.running),
                                                          isinstance(ev, Finished) and second_done.set())))
        assert first_done.wait(30) and second_done.wait(30)
        assert max(running) == 2  # it ran beside the first job
        for events, prompt, opts in ((first, "the cat", opts_a), (second, "a dog ran", opts_b)):
            text = "".join(e.text for e in events if isinstance(e, (Token, Finished)))
            assert text == gen.generate(prompt, **opts.model_dump())
            assert isinstance(events[0], Started)
    finally:
        engine.close()


def test_jobs_with_different_settings_share_a_step_and_each_gets_what_it_gets_alone(models):
    """Lanes that agree on score-only processors are processed as one block and every sampling row
    draws with its own job's generator; lanes with history processors keep their own: none of this
    may change a job's text."""
    gen = models["tiny"]
    engine = BatchEngine(gen, max_rows=16)
    settings = [dict(seed=1, temperature=0.8, top_p=0.9), dict(seed=2, temperature=0.8, top_p=0.9),
                dict(seed=3, repetition_penalty=1.3), dict(strategy="greedy"), dict(seed=4, top_k=5, num_return_sequences=2),
                dict(seed=5, temperature=0.8, top_p=0.9, min_new_tokens=12)]
    try:
        jobs = []
        for k, extra in enumerate(settings):
            events, done = [], threading.Event()
            opts = parse_options(dict(max_new_tokens=12, **extra))
            engine.submit(Job(f"the cat {k}", opts, _collect(events, done, opts.num_return_sequences)))
            jobs.append((events, done, f"the cat {k}", opts))
        for events, done, prompt, opts in jobs:
            assert done.wait(30)
            texts = ["".join(e.text for e in events if isinstance(e, (Token, Finished)) and e.index == i)
                     for i in range(opts.num_return_sequences)]
            alone = gen.generate(prompt, **opts.model_dump())
            assert texts == (alone if isinstance(alone, list) else [alone])
    finally:
        engine.close()


def test_a_model_without_merge_serves_jobs_one_after_another(tmp_path):
    pytest.importorskip("transformers")
    tok = tiny_tokenizer()
    tiny_model("gemma3", len(tok), **FOREIGN).save_pretrained(tmp_path)  # on the transformers engine
    tok.save_pretrained(tmp_path)
    gen = textmill.load(tmp_path)
    engine = BatchEngine(gen)
    assert not engine.can_join
    try:
        results = []
        for prompt, seed in (("the cat", 1), ("a dog", 2)):
            events, done = [], threading.Event()
            opts = parse_options(dict(max_new_tokens=6, seed=seed))
            engine.submit(Job(prompt, opts, _collect(events, done)))
            results.append((events, done, prompt, opts))
        for events, done, prompt, opts in results:
            assert done.wait(30)
            assert "".join(e.text for e in events if isinstance(e, (Token, Finished))) == gen.generate(prompt, **opts.model_dump())
    finally:
        engine.close()


# -- limits ----------------------------------------------------------------------------------------
def test_a_full_queue_is_a_429_and_a_slow_request_a_504(models):
    with live({"tiny": models["tiny"]}, max_waiting=0) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.RateLimitError, match="waiting"):
            c.completions.create(model="tiny", prompt="F", max_tokens=2)
    with live({"tiny": models["tiny"]}, timeout=0.05, max_tokens=5000) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            c.completions.create(model="tiny", prompt="F", max_tokens=5000, extra_body={"min_tokens": 5000})
        assert e.value.status_code == 504


def test_a_client_that_disconnects_cancels_its_generation(models):
    with live({"tiny": models["tiny"]}, max_tokens=100000) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        stream = c.completions.create(model="tiny", prompt="F", max_tokens=100000, stream=True, seed=0)
        next(iter(stream))
        stream.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = urllib.request.urlopen(f"{url}/metrics").read().decode()
            if 'textmill_batch_rows{model="tiny"} 0.0' in text:
                break
            time.sleep(0.05)
        assert 'textmill_batch_rows{model="tiny"} 0.0' in text


# -- the command line ------------------------------------------------------------------------------
def test_model_ids():
    assert model_id("embedded:smollm2-135m-instruct") == ("smollm2-135m-instruct", "embedded:smollm2-135m-instruct")
    assert model_id("runs/char5") == ("char5", "runs/char5")
    assert model_id("mine=runs/char5") == ("mine", "runs/char5")
    assert model_id("weights/model.gguf") == ("model", "weights/model.gguf")


@pytest.mark.slow
def test_textmill_serve_runs_from_the_command_line(tiny_run, tmp_path):
    port = free_port()
    bad = subprocess.run([sys.executable, "-m", "textmill", "serve", str(tmp_path / "missing")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    proc = subprocess.Popen([sys.executable, "-m", "textmill", "serve", f"mine={tiny_run}", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as r:
                    assert json.loads(r.read())["models"] == ["mine"]
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else ""
                time.sleep(0.2)
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        assert c.completions.create(model="mine", prompt="First", max_tokens=5, temperature=0).choices[0].text
    finally:
        proc.terminate()
        proc.wait(30)


def test_an_encoder_decoder_run_maps_its_source_and_draws_attention(tmp_path):
    from .helpers import GERMAN, pair_config

    (tmp_path / "train.de").write_text("".join(f"{w} {v}\n" for w in GERMAN for v in GERMAN), encoding="utf-8")
    (tmp_path / "train.en").write_text("".join(f"{GERMAN[w]} {GERMAN[v]}\n" for w in GERMAN for v in GERMAN), encoding="utf-8")
    run = tmp_path / "run"
    textmill.train(pair_config(tmp_path, "transformer", max_steps=20), run)
    gen = textmill.load(run)
    with live({"mt": gen}) as url:
        c = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        source = " ".join(list(GERMAN)[:3])
        expected = gen.generate(source, max_new_tokens=8, strategy="greedy")
        assert c.completions.create(model="mt", prompt=source, max_tokens=8, temperature=0).choices[0].text == expected
        reply = c.chat.completions.create(model="mt", max_tokens=8, temperature=0, messages=[
            {"role": "user", "content": "an earlier turn"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": source}])
        assert reply.choices[0].message.content == expected  # the last user message is the source
        code, amap = post(f"{url}/v1/textmill/attention", json.dumps({"model": "mt", "source": source}).encode())
        assert code == 200 and len(amap["weights"]) == len(amap["target"])
        assert all(len(row) == len(amap["source"]) and abs(sum(row) - 1) < 1e-2 for row in amap["weights"])


# -- remote generators: openai: sources against this server ------------------------------------------
def test_an_openai_source_generates_what_the_served_model_generates(server, models, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    remote = textmill.load(f"openai:tiny@{server}/v1")
    local = models["tiny"]
    prompts = ["First", "All", "You"]
    got = remote.generate(prompts, max_new_tokens=12, seed=5)
    assert got == [local.generate(p, max_new_tokens=12, seed=5 + i) for i, p in enumerate(prompts)]  # seed + index per prompt
    assert remote.generate("First", max_new_tokens=8, seed=1, num_return_sequences=2) == \
        local.generate("First", max_new_tokens=8, seed=1, num_return_sequences=2)
    assert "".join(remote.stream("All", max_new_tokens=15, seed=2)) == local.generate("All", max_new_tokens=15, seed=2)
    chat = textmill.load(f"openai:chat@{server}/v1")
    assert chat.info["chat"] is True and remote.info["chat"] is False
    messages = [{"role": "user", "content": "the cat"}]
    assert chat.chat(messages, max_new_tokens=6, strategy="greedy") == models["chat"].chat(messages, max_new_tokens=6,
                                                                                           strategy="greedy")


def test_openai_sources_fail_clearly(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(textmill.TextmillError, match="no base URL"):
        textmill.load("openai:tiny")
    with pytest.raises(textmill.TextmillError, match="answered 404: The model 'nope' does not exist"):
        textmill.load(f"openai:nope@{server}/v1")
    with pytest.raises(textmill.TextmillError, match="cannot reach"):
        textmill.load(f"openai:tiny@http://127.0.0.1:{free_port()}/v1")
    remote = textmill.load(f"openai:tiny@{server}/v1")
    with pytest.raises(textmill.TextmillError, match="at most 64"):
        remote.generate("F", max_new_tokens=100)
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with pytest.raises(textmill.TextmillError, match="401"):
        textmill.load(f"openai:tiny@{server}/v1")


def test_generate_and_synth_take_an_openai_source(server, models, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from textmill.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    runner = CliRunner()
    res = runner.invoke(app, ["generate", f"openai:tiny@{server}/v1", "-p", "First", "--max-new-tokens", "10", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "First" + models["tiny"].generate("First", max_new_tokens=10, seed=4) in res.output
    data = tmp_path / "rows.txt"
    rows = [(f"the {a} {b} sat", "happy") for a in ("big", "small", "red") for b in ("cat", "dog")] + \
           [(f"a {a} {b} ran", "sad") for a in ("blue", "red", "big") for b in ("cat", "dog")]
    data.write_text("".join(f"{label}\t{text}\n" for text, label in rows), encoding="utf-8")
    out = tmp_path / "synth.jsonl"
    res = runner.invoke(app, ["synth", str(data), "--generator", f"prompt:openai:chat@{server}/v1", "--per-label", "3",
                              "--out", str(out), "--option", "skip_filters=[length, charset, label, near_duplicate, training_copy]",
                              "--option", 'generator_options={"max_new_tokens": 8}'])
    assert res.exit_code == 0, res.output
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(written) == 6 and {r["label"] for r in written} == {"happy", "sad"}


# -- who may reach the server --------------------------------------------------------------------------
def raw(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, headers, JSON answer) of one request, with the headers a client would never send itself."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def test_the_models_list_names_its_sources_never_their_paths(client, tiny_run):
    cards = {m.id: m.model_dump() for m in client.models.list()}
    assert cards["tiny"]["source"] == tiny_run.name and cards["chat"]["source"] == Path(cards["chat"]["source"]).name
    assert not any(str(tiny_run.parent) in str(card) for card in cards.values())


def test_a_host_name_the_server_was_not_started_for_is_refused(models):
    """DNS rebinding: a page on a name that resolves to 127.0.0.1 sends its own Host header."""
    body = json.dumps({"model": "tiny", "prompt": "First", "max_tokens": 2}).encode()
    with live(models) as url:
        for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
            status, _, answer = raw(f"{url}/v1/completions", "POST", body, {"Host": host, "Content-Type": "application/json"})
            assert status == 400 and answer["error"]["code"] == "invalid_host" and "--allowed-host" in answer["error"]["message"]
        assert raw(f"{url}/health", headers={"Host": "localhost"})[0] == 200
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        assert client.completions.create(model="tiny", prompt="First", max_tokens=2).choices[0].text is not None
    with live(models, allowed_hosts=("127.0.0.1", "models.lan")) as url:
        assert raw(f"{url}/health", headers={"Host": "models.lan:8000"})[0] == 200
        assert raw(f"{url}/health", headers={"Host": "evil.example"})[0] == 400


def test_other_sites_pages_cannot_start_generation_unless_allowed(models):
    """A cross-site `text/plain` POST needs no preflight, so a browser sends it from any page: the server
    refuses every request from another origin unless --cors-origin allows that origin."""
    body = json.dumps({"model": "tiny", "prompt": "First", "max_tokens": 2}).encode()
    with live(models) as url:
        status, _, answer = raw(f"{url}/v1/completions", "POST", body, {"Origin": "http://evil.example",
                                                                          "Content-Type": "text/plain"})
        assert status == 403 and answer["error"]["code"] == "cross_origin"
        with urllib.request.urlopen(f"{url}/metrics") as r:
            counted = r.read().decode()
        assert 'path="/v1/completions",status="403"' in counted and 'path="/v1/completions",status="200"' not in counted
        status, _, _ = raw(f"{url}/v1/completions", "POST", body, {"Origin": url, "Content-Type": "application/json"})
        assert status == 200  # the playground: the server's own origin
    with live(models, cors_origins=("http://app.example",)) as url:
        status, headers, _ = raw(f"{url}/v1/completions", "OPTIONS", None, {
            "Origin": "http://app.example", "Access-Control-Request-Method": "POST"})
        assert status == 204 and headers["access-control-allow-origin"] == "http://app.example"
        status, headers, answer = raw(f"{url}/v1/completions", "POST", body, {"Origin": "http://app.example",
                                                                                "Content-Type": "application/json"})
        assert status == 200 and headers["access-control-allow-origin"] == "http://app.example"
        assert raw(f"{url}/v1/completions", "POST", body, {"Origin": "http://evil.example"})[0] == 403


def test_the_fingerprint_names_the_weight_format_and_only_float32_promises_batch_invariance(models, tiny_run):
    """A client that needs the same text alone and in any batch can tell from the answer: the
    system_fingerprint changes with the format, and the model card says whether the format keeps it."""
    quick = textmill.load(tiny_run, quantize="bf16")
    with live({"tiny": models["tiny"], "tiny-bf16": quick}) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        prints = {m: client.completions.create(model=m, prompt="First", max_tokens=2, seed=1).system_fingerprint
                  for m in ("tiny", "tiny-bf16")}
        chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        cards = {m.id: m.model_dump() for m in client.models.list()}
    assert prints["tiny"].endswith("-fp32") and prints["tiny-bf16"].endswith("-bf16") and chat.system_fingerprint == prints["tiny"]
    assert cards["tiny"]["batch_invariant"] is True and cards["tiny-bf16"]["batch_invariant"] is False
