"""The ports of each stack: fixed ones for `make stack`, free ones for the tests."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.processes.waiting import PortPool


@dataclass(frozen=True)
class CollectorPorts:
    """One Collector: OTLP in, health check, its Prometheus exporter, its own metrics."""

    otlp_grpc: int
    otlp_http: int
    health: int
    prometheus: int
    telemetry: int

    @classmethod
    def free(cls, pool: PortPool) -> CollectorPorts:
        return cls(*(pool.take() for _ in range(5)))

    @classmethod
    def numbered(cls, grpc: int, health: int, telemetry: int) -> CollectorPorts:
        """HTTP beside gRPC, the exporter beside the Collector's own metrics."""
        return cls(grpc, grpc + 1, health, telemetry + 1, telemetry)


@dataclass(frozen=True)
class JaegerPorts:
    otlp_grpc: int
    otlp_http: int
    query_http: int
    query_grpc: int
    health: int

    @classmethod
    def default(cls) -> JaegerPorts:
        return cls(14317, 14318, 16686, 16685, 13134)

    @classmethod
    def free(cls, pool: PortPool) -> JaegerPorts:
        return cls(*(pool.take() for _ in range(5)))


@dataclass(frozen=True)
class Ports:
    """Every port of the single-Collector stack: :meth:`default` for `make stack`,
    :meth:`free` for tests."""

    collector: CollectorPorts
    jaeger: JaegerPorts
    prometheus: int
    service: int

    @classmethod
    def default(cls) -> Ports:
        return cls(CollectorPorts(4317, 4318, 13133, 8889, 8888), JaegerPorts.default(), 9090, 8001)

    @classmethod
    def free(cls, pool: PortPool | None = None) -> Ports:
        pool = pool or PortPool()
        return cls(CollectorPorts.free(pool), JaegerPorts.free(pool), pool.take(), pool.take())


@dataclass(frozen=True)
class TierPorts:
    """Every port of the tiered stack: service ``i`` sends to agent ``i``; the agents route
    to every gateway."""

    agents: tuple[CollectorPorts, ...]
    gateways: tuple[CollectorPorts, ...]
    jaeger: JaegerPorts
    prometheus: int
    services: tuple[int, ...]

    @classmethod
    def default(cls, hosts: int, gateways: int | None = None) -> TierPorts:
        """Agent ``i`` on 4317+10i (gRPC), the gateways on 4417+10j, services on 8001+i."""
        gateways = hosts if gateways is None else gateways
        if not 1 <= hosts <= 9 or not 1 <= gateways <= 9:
            raise ValueError("between 1 and 9 hosts and gateways")
        return cls(
            tuple(
                CollectorPorts.numbered(4317 + 10 * i, 13133 + 10 * i, 8888 + 10 * i)
                for i in range(hosts)
            ),
            tuple(
                CollectorPorts.numbered(4417 + 10 * j, 13233 + 10 * j, 8988 + 10 * j)
                for j in range(gateways)
            ),
            JaegerPorts.default(),
            9090,
            tuple(8001 + i for i in range(hosts)),
        )

    @classmethod
    def free(cls, hosts: int, gateways: int, pool: PortPool | None = None) -> TierPorts:
        pool = pool or PortPool()
        return cls(
            tuple(CollectorPorts.free(pool) for _ in range(hosts)),
            tuple(CollectorPorts.free(pool) for _ in range(gateways)),
            JaegerPorts.free(pool),
            pool.take(),
            tuple(pool.take() for _ in range(hosts)),
        )
