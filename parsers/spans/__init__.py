"""Span formats (OTLP/JSON, Zipkin v2, Jaeger JSON, the older single-span shapes) -> :class:`SpanRecord`,
and a span -> its one document (Jaeger's model + ECS). The entry point is ``parsers/span.py``."""
