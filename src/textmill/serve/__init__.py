"""Serving: an OpenAI-compatible HTTP API over textmill models (`textmill serve`)."""

from .app import ServeSettings, create_app, render_chat

__all__ = ["ServeSettings", "create_app", "render_chat"]
