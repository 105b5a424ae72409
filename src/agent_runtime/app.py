"""The ASGI entry point: ``uvicorn --factory agent_runtime.app:create_app``.

The factory itself belongs to the HTTP adapter (:mod:`agent_runtime.api.app`); this module
keeps the stable, documented import path.
"""

from agent_runtime.api.app import create_app

__all__ = ["create_app"]
