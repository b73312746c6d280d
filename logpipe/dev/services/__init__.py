"""Local development services: Kafka (KRaft), Elasticsearch and Alertmanager on 127.0.0.1.

``logpipe dev up`` and the test fixtures both go through :func:`open_backend`, which picks how the
services are provided (processes we start ourselves, testcontainers, or already running services
named by environment variables). :class:`ServiceManager` is the local, process-based backend.
"""

from __future__ import annotations

from logpipe.dev.services.backend import SERVICE_NAMES, ServiceBackend, ServiceName, open_backend
from logpipe.dev.services.errors import DevServiceError

__all__ = ["SERVICE_NAMES", "DevServiceError", "ServiceBackend", "ServiceName", "open_backend"]
