"""Synthetic labelled data: generators, filters, a resumable writer and the quality report."""

from .filters import Candidate, Filter
from .generators import GENERATORS, SynthGenerator, build_generator
from .pipeline import SynthConfig, SynthResult, synthesize

__all__ = ["GENERATORS", "Candidate", "Filter", "SynthConfig", "SynthGenerator", "SynthResult", "build_generator", "synthesize"]
