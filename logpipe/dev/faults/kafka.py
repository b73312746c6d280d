"""A Kafka broker of its own whose clients reach it only through our fault proxies.

A Kafka client connects to the bootstrap address once, then to the address the broker *advertises*
for that listener (metadata, the group coordinator, every produce and fetch). A proxy in front of
the usual broker would be bypassed after the first request; so this broker has two extra
listeners whose advertised ports are proxy ports:

- ``PLAINTEXT://127.0.0.1:<base>`` — the health probe, topic admin and the test's own checks;
- ``SHIP://127.0.0.1:<base+1>``, advertised as ``127.0.0.1:<base+3>`` — the shipper's path;
- ``CONSUME://127.0.0.1:<base+2>``, advertised as ``127.0.0.1:<base+4>`` — the consumer's path.

So the shipper → Kafka and Kafka → consumer paths can be faulted one at a time, while the test
itself still sees the broker directly. (``base`` is 9250 + ``LOGPIPE_DEV_PORT_OFFSET``; the broker
runs in its own state folder ``<state>/faulted-kafka`` and never disturbs the shared one.)

Why a proxy rather than ``tc netem``/``iptables`` in a network namespace: the faults are switched
from the test's own event loop in microseconds, per path, without root, and "a broker that accepts
connections but never answers" needs a process that completes handshakes and then stays silent —
which a packet filter cannot express (it drops or rejects, the kernel answers the handshake either
way). See docs/RELIABILITY.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from logpipe.dev.faults.tcp_proxy import FaultProxy
from logpipe.dev.services.kafka import KafkaService
from logpipe.dev.services.paths import DevPaths
from logpipe.dev.services.service import Report, _silent

if TYPE_CHECKING:
    from logpipe.dev.services.manager import ServiceManager

BASE_PORT = 9250


class FaultedKafkaService(KafkaService):
    """Kafka with a direct listener and two listeners advertised at proxy ports."""

    def __init__(self, paths: DevPaths, report: Report = _silent, base_port: int = BASE_PORT) -> None:
        super().__init__(paths, report, port=base_port, controller_port=base_port + 10000)
        self.ship_port = base_port + 1
        self.consume_port = base_port + 2
        self.ship_proxy_port = base_port + 3
        self.consume_proxy_port = base_port + 4

    @property
    def ports(self) -> list[int]:
        # not the proxy ports: a test binds those while the broker runs
        return [self.port, self.ship_port, self.consume_port, self.controller_port]

    def server_properties(self) -> str:
        base = super().server_properties()
        keep = [ln for ln in base.splitlines()
                if not ln.startswith(("listeners=", "advertised.listeners=", "listener.security.protocol.map="))]
        extra = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},SHIP://127.0.0.1:{self.ship_port},"
            f"CONSUME://127.0.0.1:{self.consume_port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},SHIP://127.0.0.1:{self.ship_proxy_port},"
            f"CONSUME://127.0.0.1:{self.consume_proxy_port}",
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SHIP:PLAINTEXT,CONSUME:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
        return "\n".join(keep) + "\n" + "".join(f"{k}={v}\n" for k, v in extra.items())


@dataclass(frozen=True)
class FaultedKafka:
    """Addresses of the faulted broker: ``direct`` bypasses the proxies; ``ship``/``consume`` go through them."""

    direct: str
    ship: str
    consume: str
    ship_listener: int
    consume_listener: int
    ship_proxy_port: int
    consume_proxy_port: int

    def proxies(self) -> tuple[FaultProxy, FaultProxy]:
        """The two proxies (not started: ``await p.start()`` in the event loop that will switch them)."""
        return (FaultProxy("127.0.0.1", self.ship_listener, listen_port=self.ship_proxy_port),
                FaultProxy("127.0.0.1", self.consume_listener, listen_port=self.consume_proxy_port))


def faulted_paths(paths: DevPaths) -> DevPaths:
    """The faulted broker's own state folder (the download cache stays shared)."""
    return DevPaths(cache=paths.cache, state=paths.state / "faulted-kafka")


def _manager(paths: DevPaths | None = None, report: Report = _silent) -> tuple[ServiceManager, FaultedKafkaService]:
    from logpipe.dev.services.manager import ServiceManager, port_offset  # manager imports services: no cycle

    own = faulted_paths(paths or DevPaths.from_env())
    svc = FaultedKafkaService(own, report, base_port=BASE_PORT + port_offset())
    return ServiceManager(own, [svc], report), svc


def endpoints(svc: FaultedKafkaService) -> FaultedKafka:
    return FaultedKafka(
        direct=svc.endpoint, ship=f"127.0.0.1:{svc.ship_proxy_port}", consume=f"127.0.0.1:{svc.consume_proxy_port}",
        ship_listener=svc.ship_port, consume_listener=svc.consume_port,
        ship_proxy_port=svc.ship_proxy_port, consume_proxy_port=svc.consume_proxy_port,
    )


def start_faulted_kafka(paths: DevPaths | None = None, report: Report = _silent) -> FaultedKafka:
    """Start the faulted broker unless it runs; return its addresses."""
    manager, svc = _manager(paths, report)
    manager.ensure("kafka")
    return endpoints(svc)


def faulted_kafka_running(paths: DevPaths | None = None) -> bool:
    manager, _ = _manager(paths)
    (status,) = manager.status()
    return status.state == "running"


def stop_faulted_kafka(paths: DevPaths | None = None) -> None:
    manager, _ = _manager(paths)
    manager.stop("kafka")


def main(argv: list[str] | None = None) -> int:
    """``python -m logpipe.dev.faults.kafka up|status|down``."""
    from logpipe.dev.services.manager import own_broker_main

    manager, svc = _manager(report=print)

    def started() -> str:
        e = endpoints(svc)
        return f"direct={e.direct} ship={e.ship} consume={e.consume}"

    return own_broker_main(manager, argv, started)


if __name__ == "__main__":
    raise SystemExit(main())
