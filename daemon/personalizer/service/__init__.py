"""The service: the threads that run the engine, and how it is built from a configuration."""

from .bootstrap import SetupError, build_service
from .service import Service

__all__ = ["Service", "SetupError", "build_service"]
