"""Fine-tuning: start a run from another run's weights and tokenizer (`train.init_from`).

The base run's tokenizer is kept, with the control tokens this run needs and the base lacks (its
labels, a task's markers) added right after the base's own special tokens. The embedding and output
rows of an added token start at the mean of the base's rows for its name (`<label=positive>`: the
base's tokens of "positive"; the mean of all rows when the name has none), so each label starts
distinct and meaningful, which LoRA, freezing the embeddings, depends on: with one shared row every
label looked alike, and the adapters could not tell them apart. Every other row starts at the base's
row for the same token. A shorter context keeps the base's first position rows. Every other weight
must match the base's shape exactly; a mismatch names the model fields that differ. Model fields
the config leaves out are the base's.

`init_from` may also name a pretrained source (`embedded:NAME`, a GGUF file, a Hugging Face
directory of a Llama, Gemma 3 or GPT-2 model): it is imported into a textmill run once (exchange/hf.py,
`import_run`), kept under the cache directory (`TEXTMILL_CACHE`, default ~/.cache/textmill) for the
next run and a resume, and used as the base run.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig, TokenizerConfig
from ..errors import CheckpointError, ConfigError
from ..exchange.hf import import_run
from ..models.hf import cache_dir, is_pretrained_source, resolve
from ..rundir import load_weights, read_run_config
from ..tokenizers import Tokenizer, load_tokenizer, vocab_index


def base_dir(cfg: RunConfig) -> Path:
    """The base run directory of `cfg` (`train.init_from`), checked to hold finished weights; a
    pretrained source's imported run."""
    if is_pretrained_source(str(cfg.train.init_from)):
        return imported(str(cfg.train.init_from))
    path = Path(str(cfg.train.init_from))
    missing = [n for n in ("config.json", "tokenizer.json", "model.safetensors", "train.yaml") if not (path / n).is_file()]
    if missing:
        raise CheckpointError(f"train.init_from: {path} is missing {', '.join(missing)}; point it at a run directory "
                              "written by `textmill train`, or at a pretrained source (embedded:smollm2-135m-instruct, a "
                              "GGUF file, a Hugging Face model directory): textmill reads local files only")
    return path


@functools.cache
def imported(spec: str) -> Path:
    """The textmill run that pretrained source `spec` was imported into, importing it on first use.
    The cache entry is named after the source's files (paths, sizes, times): a changed file is
    imported afresh."""
    source = resolve(spec)
    files = [source.directory / source.gguf_file] if source.gguf_file else sorted(p for p in source.directory.iterdir() if p.is_file())
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.removeprefix("embedded:").rstrip("/").rsplit("/", 1)[-1])
    out = cache_dir() / "imports" / f"{name}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    if not (out / "model.safetensors").is_file():  # import_run writes the run whole (files.replacing), or not at all
        import_run(spec, out)
    return out


def with_base(cfg: RunConfig) -> RunConfig:
    """`cfg` with the base run's tokenizer sections (plus this run's control tokens) and the base's
    model fields where the config leaves them out, so that the saved train.yaml says which tokenizer
    and sizes the run really uses."""
    base_path = base_dir(cfg)
    base = read_run_config(base_path)
    if base.model.family != cfg.model.family:
        raise ConfigError(f"train.init_from: {base_path} is a {base.model.family!r} run; a {cfg.model.family!r} model "
                          f"cannot start from it (set model.family: {base.model.family})")
    explicit = {k for k in cfg.tokenizer.model_fields_set if k != "control_tokens"}
    differ = [k for k in sorted(explicit) if getattr(cfg.tokenizer, k) != getattr(base.tokenizer, k)]
    if differ:
        raise ConfigError(f"train.init_from: the tokenizer is {base_path}'s ({base.tokenizer.kind}, vocab_size "
                          f"{base.tokenizer.vocab_size}); remove tokenizer.{', tokenizer.'.join(differ)} from the config")

    def merged(base_tok: TokenizerConfig | None, own: TokenizerConfig | None) -> TokenizerConfig | None:
        if base_tok is None:
            return None
        extra = own.control_tokens if own is not None else []
        return base_tok.model_copy(update={"control_tokens": list(dict.fromkeys([*base_tok.control_tokens, *extra]))})

    model = base.model.model_copy(update={k: getattr(cfg.model, k) for k in cfg.model.model_fields_set})
    return cfg.model_copy(update={"model": model, "tokenizer": merged(base.tokenizer, cfg.tokenizer),
                                  "source_tokenizer": merged(base.source_tokenizer, cfg.source_tokenizer)})


def token_name(token: str) -> str:
    """The words a control token stands for: `<label=very_good>` -> "very good", `<sep>` -> "sep"."""
    return re.sub(r"^<(?:label=)?|>$", "", token).replace("_", " ")


def load_base_weights(model: nn.Module, cfg: RunConfig, tokenizers: dict[str, Tokenizer]) -> None:
    """Copy the base run's weights into `model` (built for `cfg` and `tokenizers`)."""
    path = base_dir(cfg)
    base, _ = load_weights(path)
    base_cfg = base.cfg
    # base vocabulary size -> the base row of each id (-1: added), and the base rows of each added id's name
    rows: dict[int, tuple[list[int], dict[int, list[int]]]] = {}
    for name, tok in tokenizers.items():
        base_tok = load_tokenizer(path / name)
        index = vocab_index(base_tok, tok)
        new_ids = [i for i, b in enumerate(index) if b < 0]  # in the order of the added specials
        names = {i: base_tok.encode(token_name(t)) for i, t in zip(new_ids, tok.specials[len(base_tok.specials):])}
        if rows.setdefault(len(index) - len(new_ids), (index, names)) != (index, names):
            raise ConfigError(f"train.init_from: {path}'s source and target vocabularies have the same size but gained "
                              "different tokens; give the task's control tokens to one of them")
    ours, theirs = model.state_dict(), base.state_dict()
    differ = {k: (v, getattr(cfg.model, k)) for k, v in base_cfg.model_dump().items() if getattr(cfg.model, k, v) != v}
    hint = f"the model section must match {path}/train.yaml" + (
        f" (base vs here: {', '.join(f'{k} {a!r} vs {b!r}' for k, (a, b) in differ.items())})" if differ else "")
    if set(ours) != set(theirs):
        raise ConfigError(f"train.init_from: the model has different weights from {path}'s; {hint}")
    with torch.no_grad():
        for key, target in ours.items():
            source = theirs[key]
            if source.shape == target.shape:
                target.copy_(source)
            elif source.shape[1:] == target.shape[1:] and len(rows.get(source.shape[0], ([], {}))[0]) == target.shape[0]:
                index, names = rows[source.shape[0]]
                target.copy_(source[torch.tensor(index).clamp(min=0)])
                everything = source.float().mean(0)
                for i, ids in names.items():
                    target[i] = source[ids].float().mean(0) if ids else everything
            elif source.shape[1:] == target.shape[1:] and source.shape[0] == base_cfg.context > target.shape[0] == cfg.model.context:
                target.copy_(source[:target.shape[0]])
            else:
                raise ConfigError(f"train.init_from: {key} is {tuple(source.shape)} in {path} but {tuple(target.shape)} here; {hint}")
