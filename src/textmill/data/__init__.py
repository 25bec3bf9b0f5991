"""Data: corpus readers, embedded defaults, task adapters, splits and datasets."""

from .datasets import LMBatch, PairBatch, PairDataset, TokenStream, encode_stream, holdout, split_documents
from .embedded import EMBEDDED, chinese_reviews_labelled, embedded_documents
from .sources import read_documents, read_utf8

__all__ = ["EMBEDDED", "LMBatch", "PairBatch", "PairDataset", "TokenStream", "chinese_reviews_labelled",
           "embedded_documents", "encode_stream", "holdout", "read_documents", "read_utf8", "split_documents"]
