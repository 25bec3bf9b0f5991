"""Serving: an OpenAI-compatible HTTP API over textmill models (`textmill serve`)."""

from .app import create_app, render_chat
from .schema import ServeSettings

__all__ = ["ServeSettings", "create_app", "render_chat"]
