"""Responsible generation in English and Chinese: personal information found and redacted (pii.py),
a content filter by category (content.py), one policy for prompts and outputs (policy.py), and files
redacted whole (redact.py)."""

from .content import CATEGORIES, POLICIES, ContentFilter, Hit, Verdict
from .pii import ACTIONS, TYPES, Redactor, Span, detect
from .policy import Safety, SafetyConfig, SafetyError
from .redact import redact_file

__all__ = ["ACTIONS", "CATEGORIES", "ContentFilter", "Hit", "POLICIES", "Redactor", "Safety", "SafetyConfig",
           "SafetyError", "Span", "TYPES", "Verdict", "detect", "redact_file"]
