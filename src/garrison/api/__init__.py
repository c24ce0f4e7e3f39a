"""The console's REST API (FastAPI): ``create_app(console, runtime_factory)``."""

from garrison.api.app import create_app

__all__ = ["create_app"]
