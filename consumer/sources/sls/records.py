"""SLS logs back into the records the parsers read: the line's bytes and the ``lp.*`` headers.

logpipe's SLS sink (``shipper/sinks/sls/sink.py``) writes one LogGroup per file: tags ``namespace``,
``pod``, ``pod_uid``, ``container``, ``component``, ``node``, ``log_type``, ``path``, ``file_id``
(and ``format`` if a rule chose one); per log the contents ``content`` (the line, unchanged),
``offset`` and ``flags``. Those become the same value and headers a Kafka record carries, so a line
is parsed, given its ``_id`` and evaluated exactly as on the Kafka path.

Logs written by other agents keep their fields: iLogtail's Kubernetes tags (``_namespace_``,
``_pod_name_``, ``_pod_uid_``, ``_container_name_``, ``__path__``, ``__hostname__``) fill the
metadata; a log with a ``content`` field is that line, any other log becomes a JSON object of its
fields (an app line whose fields are kept). Such logs have no file identity: their ``_id`` comes
from iLogtail's ``__pack_id__`` tag, else a hash of the stored group (which carries its receive
time), and the log's place in its group — never from cursors, which depend on how the shard was
pulled — so a re-read stores them once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import orjson

from logpipe.core.envelope import (
    ENVELOPE_VERSION,
    H_COMPONENT,
    H_CONTAINER,
    H_FILE_ID,
    H_FLAGS,
    H_FORMAT,
    H_NAMESPACE,
    H_NODE,
    H_OFFSET,
    H_PATH,
    H_POD,
    H_POD_UID,
    H_READ_TS,
    H_TYPE,
    H_VERSION,
    LOG_TYPES,
)
from logpipe.core.workloads import derive_component

# tag -> header, for logpipe's own sink and then iLogtail's Kubernetes layout
_OUR_TAGS = {
    "namespace": H_NAMESPACE,
    "pod": H_POD,
    "pod_uid": H_POD_UID,
    "container": H_CONTAINER,
    "component": H_COMPONENT,
    "node": H_NODE,
    "log_type": H_TYPE,
    "path": H_PATH,
    "file_id": H_FILE_ID,
    "format": H_FORMAT,
}
_ILOGTAIL_TAGS = {
    "_namespace_": H_NAMESPACE,
    "_pod_name_": H_POD,
    "_pod_uid_": H_POD_UID,
    "_container_name_": H_CONTAINER,
    "__path__": H_PATH,
    "__hostname__": H_NODE,
}


@dataclass(frozen=True, slots=True)
class SlsRecord:
    """One log as the consume loop sees a record (``consumer.ports.SourceRecord``)."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def group_headers(tags: Mapping[str, str], topic: str, source: str, default_type: str) -> dict[str, str]:
    """The per-file headers of a LogGroup (its tags, ``__topic__`` and ``__source__``)."""
    out: dict[str, str] = {H_VERSION: str(ENVELOPE_VERSION)}  # the records are of today's envelope
    for tag, header in _OUR_TAGS.items():
        if tags.get(tag):
            out[header] = tags[tag]
    for tag, header in _ILOGTAIL_TAGS.items():
        if header not in out and tags.get(tag):
            out[header] = tags[tag]
    if H_NODE not in out and source:
        out[H_NODE] = source
    if H_TYPE not in out or out[H_TYPE] not in LOG_TYPES:
        out[H_TYPE] = default_type
    if H_COMPONENT not in out:
        out[H_COMPONENT] = derive_component(out[H_POD]) if out.get(H_POD) else (topic or "")
    return out


def _value_of(contents: Mapping[str, bytes]) -> bytes:
    if "content" in contents:
        return contents["content"]
    return orjson.dumps({k: v.decode("utf-8", "replace") for k, v in contents.items()})


def log_records(
    group: object,
    *,
    first_offset: int,
    location: str,
    default_type: str = "app",
) -> Iterator[SlsRecord]:
    """The records of one LogGroup (a protobuf ``LogGroup``), offsets ``first_offset, +1, ...``.

    ``location`` (``<logstore>/<shard>``) scopes the identity of logs that carry none of their own.
    """
    tags = {t.Key: t.Value for t in group.LogTags}  # type: ignore[attr-defined]
    base = group_headers(tags, group.Topic, group.Source, default_type)  # type: ignore[attr-defined]
    pack = tags.get("__pack_id__")
    key = base.get(H_COMPONENT, "").encode() or None
    group_id: str | None = None
    for i, log in enumerate(group.Logs):  # type: ignore[attr-defined]
        # the SDK hands str values when the whole answer is valid UTF-8, else bytes (LogGroupListRaw)
        contents = {c.Key: c.Value if isinstance(c.Value, bytes) else c.Value.encode() for c in log.Contents}
        headers = dict(base)
        offset_text = contents.pop("offset", b"").decode("ascii", "replace")
        flags = contents.pop("flags", b"").decode("utf-8", "replace")
        if H_FILE_ID in headers and offset_text.isdigit():
            headers[H_OFFSET] = offset_text
        else:  # not written by logpipe: identity from where it is stored
            if group_id is None:
                digest = hashlib.blake2b(group.SerializeToString(), digest_size=16)  # type: ignore[attr-defined]
                group_id = f"sls-pack::{pack}" if pack else f"sls::{location}/{digest.hexdigest()}"
            headers[H_FILE_ID] = group_id
            headers[H_OFFSET] = str(i)
        if flags:
            headers[H_FLAGS] = flags
        ts_ms = log.Time * 1000 + (log.Time_ns // 1_000_000 if log.HasField("Time_ns") else 0)
        headers[H_READ_TS] = str(ts_ms or int(time.time() * 1000))
        yield SlsRecord(
            offset=first_offset + i,
            key=key,
            value=_value_of(contents),
            headers=tuple((k, v.encode()) for k, v in headers.items()),
        )
