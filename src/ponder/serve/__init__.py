"""`ponder serve`: test-time scaling behind an OpenAI-compatible API (docs/serving.md)."""

from __future__ import annotations

from ponder.serve.config import Limits, Route, ServeConfig, load_config

__all__ = ["Limits", "Route", "ServeConfig", "create_app", "load_config"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """The FastAPI app (`ponder.serve.app.create_app`); imported on use, FastAPI is an extra."""
    from ponder.serve.app import create_app as create

    return create(*args, **kwargs)
