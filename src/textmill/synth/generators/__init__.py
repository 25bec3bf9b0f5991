"""Label-conditioned generators behind one interface (base.py): `fit` on the real training rows, then
`sample` any number of texts for a label, reproducibly from a seed. A generator is named by a spec
`name` or `name:argument`:

- `eda` (eda.py): the EDA baseline, edits of real sentences of the label;
- `ngram`, `rnn`, `lstm`, `gru`, `gpt[:BASE]`, `cvae` (trained.py): a model trained on the rows and
  sampled per label (`gpt:BASE` fine-tunes the run at BASE); `run:PATH`: a run trained before;
- `pretrained[:SOURCE]` (pretrained.py): a pretrained model fine-tuned (LoRA) on the rows;
- `prompt[:SOURCE]` (prompted.py): a pretrained model shown a few real rows, no training;
- `paraphrase[:SOURCE]` (paraphrase.py): an instruct model rewrites each real row in other words;
- `mix:A+B[+...]` (mix.py): several of these at once, each writing its share.

Each declares its options as a pydantic model (`Options`); a new kind registers a class in
`GENERATORS`, and the pipeline only calls `fit` and `sample`.
"""

from . import eda, mix, paraphrase, pretrained, prompted, trained  # noqa: F401  (each registers its generators)
from .base import GENERATORS, SynthGenerator, build_generator, usage
from .mix import MixGenerator

__all__ = ["GENERATORS", "MixGenerator", "SynthGenerator", "build_generator", "usage"]
