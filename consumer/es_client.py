"""The only module that builds the Elasticsearch client: its settings, and the ``_bulk`` endpoint on it.

:class:`ElasticsearchBulk` is the Elasticsearch implementation of ``consumer.ports.BulkEndpoint``;
templates (``consumer/index_templates.py``) and retention (``consumer/retention.py``) use the same
client directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from elastic_transport import TlsError, TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.serializer import CompatibilityModeNdjsonSerializer, NdjsonSerializer, OrjsonSerializer

from consumer.config import ElasticsearchConfig
from consumer.ports import BulkHttpError, BulkUnreachable
from logpipe.core.es_connection import EsConnectionError, EsRefused, es_client_kwargs
from logpipe.core.secrets import redact_urls

BULK_FILTER = "errors,items.*.status,items.*.error"
"""Only what the indexer reads of a ``_bulk`` answer (a fraction of its bytes)."""


class _EncodedNdjson(CompatibilityModeNdjsonSerializer):
    """``_bulk`` bodies are encoded by ``consumer/bulk.py`` already: send the bytes as they are.

    The client's serializer would copy a multi-megabyte body twice into fresh buffers (~1 µs per
    document of copying and page faults, measured with py-spy on the consumer bench)."""

    def dumps(self, data: Any) -> bytes:
        if type(data) is bytes and data.endswith(b"\n"):
            return data
        return super().dumps(data)


def make_client(
    cfg: ElasticsearchConfig, request_timeout: float = 60.0, max_backoff: float = 5.0
) -> AsyncElasticsearch:
    """An async client for ``cfg`` that never retries by itself (the indexer owns retries).

    A failed node is tried again after at most ``max_backoff`` seconds (the transport's default of
    30 s would delay recovery after an Elasticsearch restart).
    """
    kwargs: dict[str, Any] = {
        "request_timeout": request_timeout,
        "max_retries": 0,
        "retry_on_timeout": False,
        "dead_node_backoff_factor": 0.5,
        "max_dead_node_backoff": max_backoff,
        "serializers": {
            OrjsonSerializer.mimetype: OrjsonSerializer(),
            **{m: _EncodedNdjson() for m in (NdjsonSerializer.mimetype, _EncodedNdjson.mimetype)},
        },
        **es_client_kwargs(cfg),
    }
    return AsyncElasticsearch(cfg.urls(), **kwargs)


class ElasticsearchBulk:
    """``_bulk`` on one client, its failures as ``consumer.ports`` errors."""

    def __init__(self, es: AsyncElasticsearch, credentials: Callable[[], dict[str, Any]] | None = None) -> None:
        """``credentials``: called before each request (``es_auth_options``), so a rotated password or
        API key file is used without a restart; None keeps the client's own."""
        self.es = es
        self._credentials = credentials

    async def bulk(self, body: bytes) -> Mapping[str, Any]:
        try:
            es = self.es.options(**self._credentials()) if self._credentials is not None else self.es
            # Pre-encoded NDJSON bytes pass through the client's serializer untouched.
            resp = await es.bulk(operations=body, filter_path=BULK_FILTER)  # type: ignore[arg-type]
        except ApiError as exc:
            raise BulkHttpError(exc.meta.status, str(exc.message)) from exc
        except EsConnectionError as exc:  # the mounted password file vanished: retried like an outage
            raise BulkUnreachable(str(exc)) from exc
        except TransportError as exc:  # connection refused/reset, timeout
            raise BulkUnreachable(f"{type(exc).__name__}: {exc.message}") from exc
        answer = resp.body
        return answer if isinstance(answer, dict) else {}


def es_refusal(exc: BaseException, cfg: ElasticsearchConfig) -> EsRefused | None:
    """One line for a start-up failure that is about security (401/403, an untrusted certificate),
    naming the URL, the cause and the fix; None for anything else (Elasticsearch down, a bug)."""
    url = redact_urls(cfg.url)
    if isinstance(exc, TlsError):
        cause = str(getattr(exc, "message", "") or exc)
        why = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in cause else cause[:160]
        return EsRefused(
            f"elasticsearch: no TLS to {url} ({why}) — fix: set elasticsearch.ca_file to the cluster's CA "
            "(http_ca.crt) or elasticsearch.ssl_fingerprint"
        )
    if isinstance(exc, ApiError) and exc.meta is not None and exc.meta.status == 401:
        who = (f"user {cfg.username!r} (password from {cfg.password_value().source()})" if cfg.username
               else f"the API key ({cfg.api_key_value().source()})" if cfg.api_key_value().configured
               else "a request without credentials")
        return EsRefused(
            f"elasticsearch: {url} refused {who} (401) — fix: check elasticsearch.username with "
            "password_file, or api_key_file"
        )
    if isinstance(exc, ApiError) and exc.meta is not None and exc.meta.status == 403:
        return EsRefused(
            f"elasticsearch: {url} denied the request (403) — fix: grant the user the index and template "
            "privileges (manage_index_templates, manage_ilm, write on the indices), or set "
            "index.install_templates: false"
        )
    return None
