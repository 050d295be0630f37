"""The HTTP API: `seal serve`, OpenAI-compatible, over one home."""

from api.app import create_app

__all__ = ["create_app"]
