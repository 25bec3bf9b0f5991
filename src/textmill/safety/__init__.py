"""Responsible generation: personal information found and redacted in English and Chinese (pii.py)."""

from .pii import ACTIONS, TYPES, Redactor, Span, detect, redact_file

__all__ = ["ACTIONS", "Redactor", "Span", "TYPES", "detect", "redact_file"]
