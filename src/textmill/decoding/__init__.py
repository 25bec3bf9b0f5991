"""The decoding engine: processors, stopping criteria, strategies, and the text-level Generator."""

from .generator import Generator
from .latent import LatentGenerator
from .options import GenerationOptions, parse_options
from .processors import (
                         BadWords,
                         LogitsProcessor,
                         MinNewTokens,
                         MinP,
                         NoRepeatNGram,
                         OccurrencePenalty,
                         RepetitionPenalty,
                         SuppressTokens,
                         Temperature,
                         TopK,
                         TopP,
                         apply_processors,
)
from .seq2seq import AttentionMap, Seq2SeqGenerator
from .stopping import EosToken, MaxNewTokens, StopStrings, cut_at_stop
from .strategies import beam_search, token_loop

__all__ = ["AttentionMap", "LatentGenerator", "Seq2SeqGenerator", "BadWords", "EosToken", "GenerationOptions",
           "Generator", "LogitsProcessor", "MaxNewTokens", "MinNewTokens", "MinP", "NoRepeatNGram", "OccurrencePenalty",
           "RepetitionPenalty", "StopStrings", "SuppressTokens", "Temperature", "TopK", "TopP", "apply_processors",
           "beam_search", "cut_at_stop", "parse_options", "token_loop"]
