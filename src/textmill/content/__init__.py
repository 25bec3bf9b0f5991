"""Content creation on pretrained models: summaries (summarize), style transfer (transfer)."""

from .summarize import ExtractiveSummarizer, PromptedSummarizer, summarize, summarizer
from .transfer import MarkerTransfer

__all__ = ["ExtractiveSummarizer", "MarkerTransfer", "PromptedSummarizer", "summarize", "summarizer"]
