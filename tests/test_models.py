import pytest
import torch

from textmill.models import Conditioning, GPTConfig, RNNConfig, build_model, count_parameters

V = 40


def make(family, **kw):
    torch.manual_seed(0)
    cfg = (GPTConfig(n_layer=2, n_head=2, n_embd=32, context=16, **kw) if family == "gpt"
           else RNNConfig(cell=family, n_layer=2, n_embd=16, hidden=24, context=16, **kw))
    return build_model(cfg, V).eval()


def test_gpt_generates_past_its_context_with_a_sliding_window():
    model = make("gpt")
    idx = torch.randint(4, V, (1, 20))  # context is 16
    state = model.start(Conditioning(1))
    for t in range(20):
        logits, state = model.step(idx[:, t:t + 1], state)
    # step 17 rebuilt the cache from the last 12 tokens (three quarters), with fresh positions; 18-20 stepped on it
    assert state.length == 15
    torch.testing.assert_close(logits, model(idx[:, -15:])[:, -1], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_tied_weights_are_shared_and_counted_once():
    gpt = make("gpt")
    assert gpt.lm_head.weight is gpt.wte.weight
    untied = make("gpt", tie_weights=False)
    assert count_parameters(untied) - count_parameters(gpt) == V * 32
    rnn = make("lstm", tie_weights=True)  # hidden 24 != embedding 16: a projection makes tying possible
    assert rnn.head.weight is rnn.embed.weight
    assert rnn(torch.randint(0, V, (2, 5))).shape == (2, 5, V)


def test_short_bf16_windows_attend_explicitly_with_sdpa_s_numbers(monkeypatch):
    """Training under bf16 autocast, windows up to EXPLICIT_MAX_T tokens take the written-out causal
    attention (grouped key/value heads too): outputs and gradients match SDPA's; longer ones keep SDPA."""
    from textmill.models.layers import attention

    torch.manual_seed(0)
    q = torch.randn(2, 6, 10, 16, requires_grad=True)
    k, v = (torch.randn(2, 2, 10, 16, requires_grad=True) for _ in range(2))
    grad = torch.randn(2, 6, 10, 16)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    want.backward(grad)
    want_grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    got = attention.causal_softmax_attention(*(t.bfloat16() for t in (q, k, v)))
    got.float().backward(grad)
    torch.testing.assert_close(got.float(), want, atol=0.03, rtol=0.03)
    for g, w in zip((q.grad, k.grad, v.grad), want_grads):
        torch.testing.assert_close(g, w, atol=0.05, rtol=0.05)

    calls = []
    monkeypatch.setattr(attention, "causal_softmax_attention",
                        lambda *a: calls.append(a[0].shape[2]) or torch.zeros_like(a[0]))
    model = make("gpt", n_kv_head=1).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randint(4, V, (2, 8)))
        assert calls == [8, 8]  # both layers
        monkeypatch.setattr(attention, "EXPLICIT_MAX_T", 4)
        model(torch.randint(4, V, (2, 8)))
    assert calls == [8, 8]
    model(torch.randint(4, V, (2, 8)))  # float32: SDPA
    assert calls == [8, 8]
