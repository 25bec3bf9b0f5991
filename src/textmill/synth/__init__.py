"""Synthetic labelled data: generators, filters, a resumable writer and the quality report."""

from .config import SynthConfig
from .filters import Candidate, Filter
from .generators import GENERATORS, SynthGenerator, build_generator
from .pipeline import SynthResult, synthesize

__all__ = ["GENERATORS", "Candidate", "Filter", "SynthConfig", "SynthGenerator", "SynthResult", "build_generator", "synthesize"]
