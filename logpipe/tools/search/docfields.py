"""Names of the indexed document fields that search relies on (the consumer's ECS contract)."""

from __future__ import annotations

TIMESTAMP = "@timestamp"
INGESTED = "event.ingested"  # when the consumer indexed the line (epoch ms)
COMPONENT = "service.name"
NAMESPACE = "kubernetes.namespace"
POD = "kubernetes.pod.name"
CONTAINER = "kubernetes.container.name"
NODE = "kubernetes.node.name"
METHOD = "http.request.method"
PATH = "url.path"
STATUS = "http.response.status_code"
DURATION = "event.duration"  # nanoseconds
TRACE_ID = "trace.id"
SPAN_ID = "span.id"
PARENT_ID = "parent.id"
SPAN_NAME = "span.name"
LEVEL = "log.level"
FILE_PATH = "log.file.path"
OFFSET = "log.offset"
FILE_ID = "logpipe.file_id"
TYPE = "logpipe.type"
MESSAGE = "message"

LOG_TYPES = ("access", "app", "stdout", "trace")
