"""The only module that talks to ``aliyun-log-python-sdk``: one PutLogs request, one attempt.

The SDK's ``LogClient`` builds the protobuf LogGroup, compresses it (``x-log-compresstype: lz4``,
``x-log-bodyrawsize``), adds ``Content-MD5`` and signs the request (``Authorization: LOG id:sig``).
Two behaviours of the SDK are changed, by a subclass, without touching its request format:

* its ``_send`` retries 5xx and connection errors ten times, sleeping one second each time, inside
  the worker thread. Here every error leaves after ONE attempt: the shipper's pipeline owns retries
  (with backoff, keeping the checkpoint), and an outage must be visible, not hidden for ten seconds;
* ``Util.is_row_ip`` does not accept ``ip:port``, so an endpoint like ``http://127.0.0.1:17010``
  would be turned into the host ``<project>.127.0.0.1``; for IP endpoints the project goes in the
  ``Host`` header only, as the SDK does for a bare IP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from aliyun.log import LogClient, LogException, LogItem, PutLogsRequest
from aliyun.log.credentials import CredentialsProvider

from logpipe.core.sls_credentials import FileCredentialsProvider


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log of a LogGroup: its time and its key/value contents."""

    time_s: int
    time_ns: int
    contents: Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class LogGroupRequest:
    """One PutLogs request: a LogGroup (topic, source, tags, logs) for one project/logstore."""

    project: str
    logstore: str
    topic: str
    source: str
    tags: Sequence[tuple[str, str]]
    logs: Sequence[LogEntry]


class SlsRequestError(Exception):
    """A failed request: the SLS error code, its message, and the HTTP status (0: no response)."""

    def __init__(self, code: str, message: str, http_status: int, request_id: str = "") -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        super().__init__(f"{code} (HTTP {http_status}): {message}")


class _Attempt(Exception):  # not a LogException: the SDK retry loop lets it through
    def __init__(self, error: LogException) -> None:
        self.error = error


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _OneAttemptClient(LogClient):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Private attributes of the SDK (no public way to set them), read and set by name.
        if _is_ip(getattr(self, "_logHost", "")):
            self._isRowIp = True

    def _sendRequest(self, *args: Any, **kwargs: Any) -> Any:  # the SDK's method name
        try:
            return super()._sendRequest(*args, **kwargs)  # type: ignore[misc]
        except LogException as exc:
            raise _Attempt(exc) from exc


def _error(exc: LogException) -> SlsRequestError:
    status = exc.get_resp_status()
    # The SDK reports "no HTTP answer" (connection refused, timeout) with its default status 200.
    answered = isinstance(status, int) and 0 < status != 200
    return SlsRequestError(
        str(exc.get_error_code()),
        str(exc.get_error_message())[:500],
        status if answered else 0,
        str(exc.get_request_id() or ""),
    )


class SlsService:
    """A synchronous SLS client for one worker thread at a time (one per in-flight request)."""

    def __init__(
        self, endpoint: str, credentials: FileCredentialsProvider, *, compression: str, timeout: float
    ) -> None:
        # The SDK's public credentials_provider hook: it asks for the credentials before signing each
        # request, so a rotated AccessKey or STS token file is used without a restart.
        provider = cast(CredentialsProvider, credentials)
        self._client = _OneAttemptClient(endpoint, credentials_provider=provider, source="logpipe")
        self._client.timeout = cast(int, timeout)  # typed int by the SDK's stub; requests takes a float
        self._compress = compression != "none"

    def put(self, req: LogGroupRequest) -> None:
        """Send one LogGroup; returns once SLS answered 200, raises :class:`SlsRequestError` otherwise."""
        # The SDK's stub says str values; its put_logs takes bytes as they are (LogGroupRaw).
        items = [LogItem(e.time_s, cast(list[tuple[str, str]], list(e.contents)), e.time_ns) for e in req.logs]
        request = PutLogsRequest(
            req.project,
            req.logstore,
            req.topic,
            req.source,
            items,
            compress=self._compress,
            logtags=list(req.tags),
            compress_type="lz4" if self._compress else None,
        )
        self._call(self._client.put_logs, request)

    def probe(self, project: str) -> None:
        """One cheap authenticated request (list the project's logstores)."""
        self._call(self._client.list_logstore, project, size=1)

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _Attempt as attempt:
            raise _error(attempt.error) from None
        except LogException as exc:  # raised by the SDK before sending (e.g. InvalidLogSize)
            raise _error(exc) from None

    def close(self) -> None:
        self._client._session.close()  # type: ignore[attr-defined]
