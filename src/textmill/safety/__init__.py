"""Responsible generation in English and Chinese: personal information found and redacted (pii.py),
a content filter by category (content.py), and one policy for prompts and outputs (policy.py)."""

from .content import CATEGORIES, POLICIES, ContentFilter, Hit, Verdict
from .pii import ACTIONS, TYPES, Redactor, Span, detect, redact_file
from .policy import Safety, SafetyConfig, SafetyError

__all__ = ["ACTIONS", "CATEGORIES", "ContentFilter", "Hit", "POLICIES", "Redactor", "Safety", "SafetyConfig",
           "SafetyError", "Span", "TYPES", "Verdict", "detect", "redact_file"]
