"""The demo's two traced requests, written by real tracers into the pods' files.

* **paid**: ``pay-gw`` (OpenTelemetry SDK) serves ``POST /api/pay`` and calls ``orders``
  (``GET /api/orders``), which is traced by py_zipkin: the B3 way, the server half shares the
  client's span id (``shared: true``). Each Component logs one access line naming its span.
* **failed**: ``pay-gw`` serves ``POST /api/pay``, its call to ``bank-api`` fails with a refused
  connection (an exception event, status ERROR) and it answers 502: the trace ``logpipe trace find
  --errors`` finds.

Span lines are one span each (the SDK's ``SimpleSpanProcessor``; py_zipkin reports one list per
span), so documents = lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, Status, StatusCode
from py_zipkin import Encoding, Kind
from py_zipkin.zipkin import ZipkinAttrs, zipkin_span

from logpipe.dev.demo.podsim import PodSimulator, SimPod
from logpipe.dev.demo.tracers import ZipkinFileTransport, otel_tracer_provider


@dataclass(frozen=True, slots=True)
class Traced:
    """One request: its trace id and root span id."""

    trace_id: str
    root_span: str


@dataclass(frozen=True, slots=True)
class Checkout:
    paid: Traced
    failed: Traced


def write_checkout(sim: PodSimulator, pay: SimPod, orders: SimPod) -> Checkout:
    """Serve the two requests; the pods' ``written`` counts include the span and access lines."""
    provider = otel_tracer_provider(pay.trace_log, pay.component)
    tracer = provider.get_tracer("demo.pay-gw", "1.0")
    try:
        began = time.monotonic()
        with tracer.start_as_current_span("POST /api/pay", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "POST")
            root.set_attribute("http.response.status_code", 200)
            time.sleep(0.004)
            with tracer.start_as_current_span("GET /api/orders", kind=SpanKind.CLIENT) as call:
                call.set_attribute("http.request.method", "GET")
                ctx, parent = call.get_span_context(), root.get_span_context()
                attrs = ZipkinAttrs(
                    trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}",
                    parent_span_id=f"{parent.span_id:016x}", flags="0", is_sampled=True,
                )
                with zipkin_span(
                    service_name=orders.component, span_name="GET /api/orders", zipkin_attrs=attrs,
                    transport_handler=ZipkinFileTransport(orders.trace_log), encoding=Encoding.V2_JSON,
                    kind=Kind.SERVER,
                ):
                    served = time.monotonic()
                    time.sleep(0.012)
                    sim.write_access(orders, 1, path="/api/orders", status=200, trace_id=attrs.trace_id,
                                     span_id=attrs.span_id, method="GET", request_time=time.monotonic() - served)
                call.set_attribute("http.response.status_code", 200)
            time.sleep(0.003)
            paid = Traced(f"{parent.trace_id:032x}", f"{parent.span_id:016x}")
        sim.write_access(pay, 1, path="/api/pay", status=200, trace_id=paid.trace_id, span_id=paid.root_span,
                         method="POST", request_time=time.monotonic() - began)

        began = time.monotonic()
        with tracer.start_as_current_span("POST /api/pay", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "POST")
            time.sleep(0.002)
            with tracer.start_as_current_span("POST bank-api /charge", kind=SpanKind.CLIENT) as call:
                call.set_attribute("peer.service", "bank-api")
                time.sleep(0.03)  # the connect timeout, as it were
                call.record_exception(ConnectionRefusedError("bank-api: connection refused"))
                call.set_status(Status(StatusCode.ERROR, "bank-api: connection refused"))
            root.set_attribute("http.response.status_code", 502)
            root.set_status(Status(StatusCode.ERROR, "upstream bank-api failed"))
            ctx = root.get_span_context()
            failed = Traced(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
        sim.write_access(pay, 1, path="/api/pay", status=502, trace_id=failed.trace_id, span_id=failed.root_span,
                         method="POST", request_time=time.monotonic() - began)
    finally:
        provider.shutdown()
    for pod in (pay, orders):
        pod.written["trace.log"] = _lines(pod)
    return Checkout(paid, failed)


def _lines(pod: SimPod) -> int:
    try:
        return pod.trace_log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0
