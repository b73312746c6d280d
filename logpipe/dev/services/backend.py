"""How the dev services are provided: started locally, in containers, or already running elsewhere.

``LOGPIPE_SERVICES`` forces the mode: ``local`` (processes started by :class:`ServiceManager`),
``testcontainers`` (needs a Docker engine that answers), ``external`` (every service named by its
variable below) or ``auto`` (the default: containers where a Docker engine answers, else local).
``LOGPIPE_KAFKA_BOOTSTRAP``, ``LOGPIPE_ES_URL``, ``LOGPIPE_ALERTMANAGER_URL`` and ``LOGPIPE_JAEGER_URL``
point single services at instances that are already running, in any mode; those are used as they are and never stopped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Protocol, get_args

from logpipe.dev.services.errors import DevServiceError, UnknownServiceError

ServiceName = Literal["kafka", "elasticsearch", "alertmanager", "jaeger"]
SERVICE_NAMES: tuple[ServiceName, ...] = get_args(ServiceName)

MODE_VAR = "LOGPIPE_SERVICES"
ENDPOINT_VARS: dict[ServiceName, str] = {
    "kafka": "LOGPIPE_KAFKA_BOOTSTRAP",
    "elasticsearch": "LOGPIPE_ES_URL",
    "alertmanager": "LOGPIPE_ALERTMANAGER_URL",
    "jaeger": "LOGPIPE_JAEGER_URL",
}
MODES = ("auto", "local", "testcontainers", "external")


def service_name(name: str) -> ServiceName:
    """Check that ``name`` is a known service and return it typed."""
    for known in SERVICE_NAMES:
        if name == known:
            return known
    raise UnknownServiceError(f"unknown service {name!r} — use one of: {', '.join(SERVICE_NAMES)}")


class ServiceBackend(Protocol):
    """What the test fixtures need from a provider of services."""

    kind: str

    def ensure(self, name: ServiceName) -> str:
        """Make ``name`` run (reusing a running instance), wait until healthy, return its endpoint."""
        ...

    def controls(self, name: ServiceName) -> bool:
        """Whether :meth:`stop` and :meth:`start` work for ``name`` (not for external services)."""
        ...

    def stop(self, name: ServiceName) -> None:
        """Stop ``name`` (to test an outage); returns when it no longer answers."""
        ...

    def start(self, name: ServiceName) -> str:
        """Start ``name`` again after :meth:`stop`; returns its endpoint once healthy."""
        ...

    def healthy(self, name: ServiceName) -> bool:
        """One quick health probe of ``name``."""
        ...

    def close(self) -> None:
        """Release what this backend owns at the end of a session (local services keep running)."""
        ...


class ExternalServices:
    """Services named by environment variables; the rest (if any) come from ``fallback``."""

    kind = "external"

    def __init__(self, endpoints: Mapping[ServiceName, str], fallback: ServiceBackend | None) -> None:
        self.endpoints = dict(endpoints)
        self.fallback = fallback

    def ensure(self, name: ServiceName) -> str:
        if name in self.endpoints:
            from logpipe.dev.services.health import wait_healthy

            wait_healthy(name, self.endpoints[name], timeout=30.0, what=f"{ENDPOINT_VARS[name]}")
            return self.endpoints[name]
        return self._fallback(name).ensure(name)

    def controls(self, name: ServiceName) -> bool:
        return name not in self.endpoints and self.fallback is not None and self.fallback.controls(name)

    def stop(self, name: ServiceName) -> None:
        self._fallback(name).stop(name)

    def start(self, name: ServiceName) -> str:
        return self._fallback(name).start(name)

    def healthy(self, name: ServiceName) -> bool:
        if name in self.endpoints:
            from logpipe.dev.services.health import probe

            return probe(name, self.endpoints[name])
        return self._fallback(name).healthy(name)

    def close(self) -> None:
        if self.fallback is not None:
            self.fallback.close()

    def _fallback(self, name: ServiceName) -> ServiceBackend:
        if name in self.endpoints:
            raise DevServiceError(
                f"{name} is an external service ({ENDPOINT_VARS[name]}={self.endpoints[name]}); "
                "logpipe cannot stop or start it — unset the variable to let logpipe run it"
            )
        if self.fallback is None:
            raise DevServiceError(
                f"{MODE_VAR}=external but {ENDPOINT_VARS[name]} is not set — set it to the running {name}"
            )
        return self.fallback


def docker_engine_answers(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (a ``docker`` CLI alone is not enough)."""
    try:
        import docker  # only installed with the dev extras
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach an engine means "no engine"
        return False


def choose_mode(env: Mapping[str, str]) -> str:
    """The effective mode for ``env``: ``local``, ``testcontainers`` or ``external``."""
    mode = env.get(MODE_VAR, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise DevServiceError(f"{MODE_VAR}={mode!r} is not a mode — use one of: {', '.join(MODES)}")
    if mode == "auto":
        return "testcontainers" if docker_engine_answers() else "local"
    if mode == "testcontainers" and not docker_engine_answers():
        raise DevServiceError(
            f"{MODE_VAR}=testcontainers but no Docker engine answers — start Docker, or use {MODE_VAR}=local"
        )
    return mode


def external_endpoints(env: Mapping[str, str]) -> dict[ServiceName, str]:
    """The services that environment variables point at, with their endpoints."""
    return {name: env[var].strip() for name, var in ENDPOINT_VARS.items() if env.get(var, "").strip()}


def open_backend(env: Mapping[str, str] | None = None) -> ServiceBackend:
    """The backend the environment asks for (see the module docstring)."""
    env = os.environ if env is None else env
    endpoints = external_endpoints(env)
    mode = choose_mode(env) if env.get(MODE_VAR, "auto").strip().lower() != "external" else "external"
    inner: ServiceBackend | None
    if mode == "external":
        inner = None
    elif mode == "testcontainers":
        from logpipe.dev.services.containers import ContainerServices

        inner = ContainerServices()
    else:
        from logpipe.dev.services.manager import ServiceManager

        inner = ServiceManager()
    if endpoints or inner is None:
        return ExternalServices(endpoints, inner)
    return inner
