"""The local backend: start, stop and inspect the dev services as processes we own.

Every state change runs under an exclusive ``flock`` on a file in the state folder, so several
``logpipe dev up`` or pytest sessions (of several engineers) can start services at the same time: the
first starts them, the others wait and then find them running.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from logpipe.dev.services.alertmanager import AlertmanagerService
from logpipe.dev.services.backend import ServiceName, service_name
from logpipe.dev.services.elasticsearch import ElasticsearchService
from logpipe.dev.services.errors import DevServiceError, PortTakenError
from logpipe.dev.services.health import probe, wait_healthy
from logpipe.dev.services.jaeger import JaegerService
from logpipe.dev.services.kafka import KafkaService
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.ports import port_open, port_owner
from logpipe.dev.services.processes import PidRecord, spawn, terminate
from logpipe.dev.services.service import LocalService, Report

log = logging.getLogger(__name__)

State = Literal["running", "starting", "stopped", "external", "failed"]


@dataclass(frozen=True)
class ServiceStatus:
    """What ``logpipe dev status`` shows for one service."""

    name: ServiceName
    endpoint: str
    state: State
    pid: int | None = None
    detail: str = ""


def _log_report(message: str) -> None:
    log.info("%s", message)


class ServiceManager:
    """Starts, stops and reports the local services (Kafka, Elasticsearch, Alertmanager, Jaeger)."""

    kind = "local"

    def __init__(
        self,
        paths: DevPaths | None = None,
        services: Iterable[LocalService] | None = None,
        report: Report = _log_report,
    ) -> None:
        self.paths = paths or DevPaths.from_env()
        self.report = report
        if services is None:
            services = default_services(self.paths, report, port_offset())
        self.services: dict[ServiceName, LocalService] = {s.name: s for s in services}

    # -- the backend protocol used by the test fixtures ------------------------------------------

    def ensure(self, name: ServiceName) -> str:
        """Start ``name`` unless it runs (ours or another healthy instance); return its endpoint."""
        self.up([name])
        return self.service(name).endpoint

    def controls(self, name: ServiceName) -> bool:
        """Local services can always be stopped and started."""
        return True

    def start(self, name: ServiceName) -> str:
        """Start ``name`` (after :meth:`stop`) and wait until it is healthy."""
        return self.ensure(name)

    def healthy(self, name: ServiceName) -> bool:
        """One quick health probe."""
        svc = self.service(name)
        return probe(name, svc.endpoint)

    def close(self) -> None:
        """Nothing to release: services keep running for the next session (``dev down`` stops them)."""

    # -- commands -------------------------------------------------------------------------------

    def service(self, name: str) -> LocalService:
        """The service called ``name``."""
        svc = self.services.get(service_name(name))
        if svc is None:
            raise DevServiceError(f"this manager does not run {name}")
        return svc

    def up(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        """Start the named services (default: all) and those they require unless running, and
        wait until all are healthy; a service starts only once what it requires is healthy."""
        wanted = self._with_requirements([self.service(n) for n in (names or self.services)])
        with self._locked():
            pending = [s for s in wanted if self._needs_start(s)]
            if pending:
                with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                    list(pool.map(lambda s: s.provision(), pending))  # downloads run side by side
            # Running already, or not run by this manager (then it is the caller's to provide).
            ready = {s.name for s in wanted if s not in pending} | {
                r for s in pending for r in s.requires if r not in self.services
            }
            while pending:
                wave = [s for s in pending if set(s.requires) <= ready]
                if not wave:
                    raise DevServiceError(f"cannot order the start of {', '.join(s.name for s in pending)}")
                self._start_wave(wave)
                ready |= {s.name for s in wave}
                pending = [s for s in pending if s not in wave]
            return [self._status(s) for s in wanted]

    def _with_requirements(self, wanted: list[LocalService]) -> list[LocalService]:
        out: list[LocalService] = []
        todo = list(wanted)
        while todo:
            svc = todo.pop(0)
            if svc in out:
                continue
            out.append(svc)
            todo.extend(self.service(r) for r in svc.requires if r in self.services)
        return out

    def _start_wave(self, wave: list[LocalService]) -> None:
        """Spawn ``wave`` side by side and wait until each is healthy; on failure stop what it started."""
        started: list[tuple[LocalService, PidRecord]] = []
        try:
            for svc in wave:
                started.append((svc, self._spawn(svc)))
            for svc, record in started:
                wait_healthy(
                    svc.name,
                    svc.endpoint,
                    timeout=svc.start_timeout,
                    still_running=record.alive,
                    log_tail=svc.log_tail,
                )
        except BaseException:
            for svc, record in started:  # leave nothing half-started behind
                if not probe(svc.name, svc.endpoint):
                    self._terminate(svc, record)
            raise

    def stop(self, name: str) -> None:
        """Stop one service we started; returns when its ports are closed."""
        svc = self.service(name)
        with self._locked():
            self._stop(svc)

    def down(self, purge: bool = False) -> None:
        """Stop every service we started; with ``purge`` also delete the state folder (data, logs)."""
        with self._locked():
            for svc in self.services.values():
                self._stop(svc)
            if purge:
                for child in self.paths.state.iterdir() if self.paths.state.exists() else ():
                    if child not in (self.paths.lock, self.paths.in_use):
                        shutil.rmtree(child) if child.is_dir() else child.unlink()

    def status(self) -> list[ServiceStatus]:
        """The state of every service (no lock needed: nothing changes)."""
        return [self._status(s) for s in self.services.values()]

    # -- internals ------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.paths.state.mkdir(parents=True, exist_ok=True)
        with open(self.paths.lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes, also if we crash
            yield

    def _record(self, svc: LocalService) -> PidRecord | None:
        record = PidRecord.load(self.paths.pidfile(svc.name))
        return record if record is not None and record.alive() else None

    def _needs_start(self, svc: LocalService) -> bool:
        """False when ours (or another healthy instance) already runs; raises when a port is taken."""
        if self._record(svc) is not None:
            return False  # ours; the health wait in up() covers one that is still starting
        self.paths.pidfile(svc.name).unlink(missing_ok=True)
        if probe(svc.name, svc.endpoint):
            owner = port_owner(svc.ports[0])
            self.report(f"{svc.name}: reusing the instance already running at {svc.endpoint}"
                        + (f" ({owner.describe()})" if owner else ""))
            return False
        for port in svc.ports:
            owner = port_owner(port)
            if owner is not None or port_open("127.0.0.1", port):
                what = owner.describe() if owner else f"port {port}"
                raise PortTakenError(
                    f"{svc.name} needs {what}, which is already in use by a process logpipe did not "
                    "start — stop that process or free the port"
                )
        return True

    def _spawn(self, svc: LocalService) -> PidRecord:
        svc.prepare()
        self.report(f"starting {svc.name} on {svc.endpoint} ...")
        record = spawn(svc.command(), env=svc.environment(), cwd=svc.state_dir, log=svc.log, user=svc.user)
        record.save(self.paths.pidfile(svc.name))
        return record

    def _wait_ports_closed(self, svc: LocalService, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while any(port_open("127.0.0.1", p) for p in svc.ports) and time.monotonic() < deadline:
            time.sleep(0.2)

    def _terminate(self, svc: LocalService, record: PidRecord) -> None:
        terminate(record)
        self.paths.pidfile(svc.name).unlink(missing_ok=True)
        self._wait_ports_closed(svc)

    def _stop(self, svc: LocalService) -> None:
        record = self._record(svc)
        if record is None:
            self.paths.pidfile(svc.name).unlink(missing_ok=True)
            return
        self.report(f"stopping {svc.name} (pid {record.pid}) ...")
        self._terminate(svc, record)

    def _status(self, svc: LocalService) -> ServiceStatus:
        record = self._record(svc)
        healthy = probe(svc.name, svc.endpoint)
        if record is not None:
            return ServiceStatus(svc.name, svc.endpoint, "running" if healthy else "starting", record.pid)
        if healthy:
            owner = port_owner(svc.ports[0])
            return ServiceStatus(
                svc.name, svc.endpoint, "external", owner.pid if owner else None, "not started by logpipe dev"
            )
        owner = port_owner(svc.ports[0])
        if owner is not None:
            return ServiceStatus(svc.name, svc.endpoint, "failed", owner.pid, f"{owner.describe()} is in use")
        return ServiceStatus(svc.name, svc.endpoint, "stopped")


PORT_OFFSET_VAR = "LOGPIPE_DEV_PORT_OFFSET"


def port_offset() -> int:
    """``LOGPIPE_DEV_PORT_OFFSET`` shifts every port, to run a second set beside the usual one."""
    raw = os.environ.get(PORT_OFFSET_VAR, "0").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise DevServiceError(f"{PORT_OFFSET_VAR}={raw!r} is not a whole number — e.g. 1000") from None


def default_services(paths: DevPaths, report: Report, offset: int = 0) -> list[LocalService]:
    """Kafka, Elasticsearch, Alertmanager and Jaeger (over that Elasticsearch) on their usual ports
    plus ``offset``."""
    return [
        KafkaService(paths, report, port=9092 + offset, controller_port=19093 + offset),
        ElasticsearchService(paths, report, port=9200 + offset, transport_port=9300 + offset),
        AlertmanagerService(paths, report, port=9093 + offset),
        JaegerService(
            paths, report, port=16686 + offset, grpc_port=16685 + offset, es_url=f"http://127.0.0.1:{9200 + offset}"
        ),
    ]


def own_broker_main(manager: ServiceManager, argv: list[str] | None, started: Callable[[], str]) -> int:
    """``python -m <module> up|status|down`` of a module's own Kafka broker, ``manager``'s only service.

    ``up`` starts it unless it runs and prints ``started()`` (its endpoints); ``down`` stops it; ``status``
    (also with no verb) prints its state and exits 1 unless it is running.
    """
    args = sys.argv[1:] if argv is None else argv
    verb = args[0] if args else "status"
    if verb == "up":
        manager.ensure("kafka")
        print(started())
        return 0
    if verb == "down":
        manager.stop("kafka")
        return 0
    (status,) = manager.status()
    print(status.state)
    return 0 if status.state == "running" else 1
