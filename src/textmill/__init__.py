"""textmill: train, compare, serve and evaluate every classic family of text generation model.

    import textmill
    result = textmill.train("configs/gpt/shakespeare_char.yaml", "runs/shakespeare")
    gen = textmill.load("runs/shakespeare")
    print(gen.generate("ROMEO:", max_new_tokens=200, top_p=0.9, temperature=0.8))
"""

from .config import RunConfig, load_config
from .content import summarize
from .decoding import Generator
from .errors import TextmillError
from .evaluation import compare, evaluate
from .loading import generate, load
from .training import train

__version__ = "0.1.0"


def synthesize(*args, **kwargs):  # imported on first use: synth pulls in scikit-learn and scipy
    """Synthetic labelled data with filters and a quality report: see `textmill.synth.synthesize`."""
    from .synth import synthesize as run

    return run(*args, **kwargs)


__all__ = ["Generator", "RunConfig", "TextmillError", "compare", "evaluate", "generate", "load", "load_config",
           "summarize", "synthesize", "train", "__version__"]
