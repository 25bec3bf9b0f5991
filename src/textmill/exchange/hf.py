"""The Hugging Face format, both ways: `textmill export RUN OUT --format hf` and `textmill import SOURCE OUT`.

Export is the bridge to the engines users outgrow textmill into (vLLM, TGI, llama.cpp's converters):
a `gpt` run in GPT-2's layout (LayerNorm, learned positions, GELU) becomes a `GPT2LMHeadModel`, one
with the Llama options (RMSNorm, rotary positions, SwiGLU, optionally grouped-query attention) a
`LlamaForCausalLM`, one with Gemma 3's (query/key norms, norms around attention and MLP, GeGLU, scaled
embeddings, sliding-window layers) a `Gemma3ForCausalLM`; transformers loads each with the same
logits. A pretrained model loaded into textmill's GPT exports the same way. The tokenizer goes along
where Hugging Face `tokenizers` represents it exactly (bpe, char and pretrained tokenizers), its bos
added as textmill adds it; word and whitespace tokenizers have no exact equivalent, so their textmill
`tokenizer.json` is kept as `textmill_tokenizer.json` beside the model.

Import writes a Llama, Gemma 3 or GPT-2 pretrained source as a textmill `gpt` run directory, which
`train.init_from` fine-tunes and `load` reads like any run. models/hf.py maps the weight names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model

from ..config import validate_config
from ..errors import CheckpointError, ConfigError, DataError
from ..files import replacing
from ..loading import load
from ..models import GPT
from ..models.hf import HF_EXTRA, NATIVE_ARCHITECTURES, load_transformers, native_gpt, resolve, to_checkpoint
from ..rundir import write_run_files
from ..tokenizers import Tokenizer
from ..tokenizers.hf import HFTokenizer


def export_hf(run: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write the model (and, where it can, the tokenizer) of `run` to `out` in the Hugging Face format."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; choose another directory or pass --overwrite")
    gen = load(run)
    if not isinstance(getattr(gen, "model", None), GPT):
        raise ConfigError(f"{run} is a {getattr(gen, 'info', {}).get('family', 'grammar')} model; --format hf exports gpt runs "
                          "(and Llama, Gemma 3 or GPT-2 pretrained models, which textmill runs as gpt)")
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"exporting to the Hugging Face format needs transformers: {HF_EXTRA}") from None
    transformers.utils.logging.disable_progress_bar()
    model = _hf_model(transformers, gen.model, gen.tokenizer)
    with replacing(out) as tmp:  # the directory appears whole or not at all
        model.save_pretrained(tmp)
        _save_tokenizer(transformers, gen.tokenizer, tmp)
    return out


def import_run(spec: str | Path, out: str | Path) -> Path:
    """Write a Llama, Gemma 3 or GPT-2 pretrained source as a textmill `gpt` run directory (its GPT weights
    and its own tokenizer), which `train.init_from` fine-tunes and `load` reads like any run."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise CheckpointError(f"{out} exists and is not empty; choose a new --out directory")
    source = resolve(spec)
    hf_model, hf_tokenizer = load_transformers(source)
    gpt = native_gpt(hf_model)
    if gpt is None:
        raise ConfigError(f"{source.spec}: textmill's GPT does not implement {hf_model.config.model_type} models or this "
                          f"one's options, so it cannot become a textmill run ({NATIVE_ARCHITECTURES} architectures can); "
                          "generate with it as a pretrained source")
    cfg = validate_config({"model": gpt.cfg.model_dump(mode="json"), "tokenizer": {"kind": "hf"},
                           "data": {"source": source.spec}}, f"import of {source.spec}")
    with replacing(out) as tmp:
        write_run_files(tmp, cfg, {"tokenizer.json": HFTokenizer.from_transformers(hf_tokenizer)}, gpt.vocab_size,
                        extra={"imported_from": source.spec})
        save_model(gpt, str(tmp / "model.safetensors"))  # tied weights once
    return out


def _hf_model(transformers: Any, gpt: Any, tok: Tokenizer) -> Any:
    c = gpt.cfg
    special = {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.pad_id,
               "tie_word_embeddings": c.tie_weights}
    if (c.norm, c.positions, c.mlp) == ("layernorm", "learned", "gelu") and (c.n_kv_head or c.n_head) == c.n_head:
        config = transformers.GPT2Config(vocab_size=gpt.vocab_size, n_positions=c.context, n_embd=c.n_embd, n_layer=c.n_layer,
                                         n_head=c.n_head, n_inner=c.ffn or 4 * c.n_embd, activation_function="gelu",
                                         layer_norm_epsilon=c.norm_eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                         **special)
        return _load(transformers.GPT2LMHeadModel(config), gpt, "gpt2")
    gemma = (c.qk_norm, c.sandwich_norm, c.embed_scale)
    if (c.norm, c.positions, c.mlp) == ("rmsnorm", "rope", "swiglu") and not any(gemma) and not c.local_layers \
            and c.head_width * c.n_head == c.n_embd:
        config = transformers.LlamaConfig(vocab_size=gpt.vocab_size, hidden_size=c.n_embd, intermediate_size=c.ffn or 4 * c.n_embd,
                                          num_hidden_layers=c.n_layer, num_attention_heads=c.n_head,
                                          num_key_value_heads=c.n_kv_head or c.n_head, max_position_embeddings=c.context,
                                          rms_norm_eps=c.norm_eps, attention_bias=c.bias, mlp_bias=c.bias,
                                          rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta}, **special)
        return _load(transformers.LlamaForCausalLM(config), gpt, "llama")
    if (c.norm, c.positions, c.mlp) == ("rmsnorm", "rope", "geglu") and all(gemma) and not c.bias:
        rope = {"full_attention": {"rope_type": "default", "rope_theta": c.rope_theta},
                "sliding_attention": {"rope_type": "default", "rope_theta": c.local_rope_theta or c.rope_theta}}
        config = transformers.Gemma3TextConfig(
            vocab_size=gpt.vocab_size, hidden_size=c.n_embd, intermediate_size=c.ffn or 4 * c.n_embd, num_hidden_layers=c.n_layer,
            num_attention_heads=c.n_head, num_key_value_heads=c.n_kv_head or c.n_head, head_dim=c.head_width,
            query_pre_attn_scalar=c.head_width, max_position_embeddings=c.context, rms_norm_eps=c.norm_eps,
            sliding_window=c.window or c.context, rope_parameters=rope,
            layer_types=["sliding_attention" if i in c.local_layers else "full_attention" for i in range(c.n_layer)],
            hidden_activation="gelu_pytorch_tanh", **special)
        return _load(transformers.Gemma3ForCausalLM(config), gpt, "gemma3")
    raise ConfigError(f"no Hugging Face architecture has this gpt's layout (norm {c.norm}, positions {c.positions}, mlp {c.mlp}"
                      f"{', query/key norms' if c.qk_norm else ''}{', sandwich norms' if c.sandwich_norm else ''}); export takes "
                      "GPT-2's (layernorm, learned, gelu), Llama's (rmsnorm, rope, swiglu) or Gemma 3's (rmsnorm, rope, geglu, "
                      "qk_norm, sandwich_norm, embed_scale, no biases)")


def _load(model: Any, gpt: Any, layout: str) -> Any:
    """`model` holding `gpt`'s weights (models/hf.py names them); a gpt without biases gets zero biases."""
    weights = {n: torch.zeros_like(p) for n, p in model.named_parameters() if n.endswith(".bias")}
    weights.update(to_checkpoint(gpt, layout))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    left = [k for k in missing if k not in tied]
    if left or unexpected:
        raise RuntimeError(f"export mapping is incomplete: missing {left}, unexpected {unexpected}")
    return model.eval()


def _save_tokenizer(transformers: Any, tok: Tokenizer, out: Path) -> None:
    """tokenizer.json and its config for the kinds `tokenizers` represents exactly; else textmill's own."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, processors
    from tokenizers import Tokenizer as Backend

    if tok.kind == "hf":
        backend = Backend.from_str(tok.backend.to_str())
    elif tok.kind == "bpe":
        backend = Backend.from_str(tok.hf.to_str())
    elif tok.kind == "char":
        backend = Backend(models.WordLevel({t: i for i, t in enumerate(tok.itos)}, unk_token=tok.specials[tok.unk_id]))
        backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
        backend.decoder = decoders.Fuse()
    else:
        tok.save(out / "textmill_tokenizer.json")
        return
    if tok.kind != "hf":  # textmill's specials are whole tokens, and <bos> starts a text as textmill encodes it
        backend.add_special_tokens(list(tok.specials))
        bos = tok.specials[tok.bos_id]
        backend.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.bos_id)])
    names = {f"{n}_token": backend.id_to_token(i) for n, i in
             (("bos", tok.bos_id), ("eos", tok.eos_id), ("pad", tok.pad_id), ("unk", tok.unk_id)) if i is not None and i >= 0}
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, chat_template=getattr(tok, "chat_template", None),
                                                **names)
    fast.save_pretrained(out)
