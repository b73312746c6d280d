"""Outages on purpose: stop and start services inside one test, and put everything back afterwards.

Tests receive an :class:`OutageControl` as the ``service_manager`` fixture; type the argument with
this class (``service_manager: OutageControl``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from logpipe.dev.services.backend import ServiceBackend, ServiceName, service_name
from logpipe.dev.services.errors import DevServiceError
from logpipe.dev.services.sharing import ServiceUseLock


def _refuse(message: str) -> NoReturn:
    raise DevServiceError(message)


class OutageControl:
    """Stops and starts services for one test; :meth:`restore` restarts whatever is still stopped.

    ``stop`` and ``start`` block until done (seconds; an Elasticsearch start takes 15-30 s): from an
    async test call them with ``await asyncio.to_thread(service_manager.stop, "kafka")``.
    """

    def __init__(
        self,
        backend: ServiceBackend,
        use: ServiceUseLock | None = None,
        uncontrolled: Callable[[str], NoReturn] = _refuse,
    ) -> None:
        self._backend = backend
        self._use = use
        self._uncontrolled = uncontrolled
        self._stopped: list[ServiceName] = []

    def stop(self, name: str) -> None:
        """Stop ``name``; returns once it no longer answers."""
        svc = service_name(name)
        if not self._backend.controls(svc):
            self._uncontrolled(f"{svc} is not run by logpipe here (external service): outage tests need control")
        self._backend.ensure(svc)  # stop what is running, so start() later is a real restart
        if self._use is not None:
            self._use.exclusive()  # wait for other processes' tests to finish with the services
        if svc not in self._stopped:
            self._stopped.append(svc)
        self._backend.stop(svc)

    def start(self, name: str) -> str:
        """Start ``name`` again; returns its endpoint once healthy."""
        svc = service_name(name)
        endpoint = self._backend.start(svc)
        if svc in self._stopped:
            self._stopped.remove(svc)
        return endpoint

    def healthy(self, name: str) -> bool:
        """One quick health probe of ``name``."""
        return self._backend.healthy(service_name(name))

    def restore(self) -> None:
        """Start every service this test stopped and did not start again."""
        while self._stopped:
            self._backend.start(self._stopped.pop())
