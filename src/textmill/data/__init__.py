"""Data: corpus readers, embedded defaults, splits and token streams."""

from .datasets import TokenStream, encode_stream, split_documents
from .embedded import EMBEDDED, chinese_reviews_labelled, embedded_documents
from .sources import read_documents, read_utf8

__all__ = ["EMBEDDED", "TokenStream", "chinese_reviews_labelled", "embedded_documents", "encode_stream",
           "read_documents", "read_utf8", "split_documents"]
