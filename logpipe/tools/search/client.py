"""The only module of search that talks to Elasticsearch: typed calls, errors turned into SearchError.

Every call maps transport failures to :class:`ElasticsearchUnreachable` (naming the URL) and 4xx
answers to :class:`BadQuery` carrying Elasticsearch's own reason in one line.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import elasticsearch
from elasticsearch import AsyncElasticsearch

from logpipe.core.es_connection import EsConnection, EsConnectionError, es_client_kwargs
from logpipe.core.secrets import redact_urls
from logpipe.tools.search.errors import BadQuery, ElasticsearchUnreachable, SearchError, Unavailable
from logpipe.tools.search.hits import LogDoc

Body = Mapping[str, Any]


def transport_detail(exc: BaseException) -> str:
    """A short cause of a transport failure: ``connection refused``, ``timed out``, ``name not resolved``."""
    chain: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if any(e is c for c in chain):
            continue
        chain.append(e)
        nested = [*(getattr(e, "errors", ()) or ()), *e.args, getattr(e, "os_error", None), e.__cause__]
        stack += [x for x in nested if isinstance(x, BaseException)]
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, TimeoutError | asyncio.TimeoutError | elasticsearch.ConnectionTimeout) for e in chain):
        return "timed out"
    for e in chain:
        if isinstance(e, socket.gaierror):
            return f"host name not resolved ({e.strerror})"
    message = str(getattr(exc, "message", "") or exc)
    return " ".join(message.split())[:200]


def es_reason(body: Any) -> str:
    """The most specific reason in an Elasticsearch error body, in one line."""
    if not isinstance(body, Mapping):
        return str(body)[:300]
    err = body.get("error", body)
    if not isinstance(err, Mapping):
        return str(err)[:300]
    # search_phase_execution_exception hides the real reason in the shard failures.
    for failure in err.get("failed_shards") or ():
        reason = failure.get("reason") if isinstance(failure, Mapping) else None
        if isinstance(reason, Mapping):
            err = reason
            break
    else:
        roots = err.get("root_cause") or ()
        if roots and isinstance(roots[0], Mapping) and not err.get("caused_by"):
            err = roots[0]
    # Follow caused_by to the innermost cause, keeping the first reason that says something.
    reasons: list[str] = []
    node: Any = err
    while isinstance(node, Mapping):
        if node.get("reason"):
            reasons.append(str(node["reason"]))
        node = node.get("caused_by")
    if not reasons:
        text = str(err.get("type", "unknown error"))
    elif reasons[-1] in reasons[0]:
        text = reasons[0]
    else:
        text = f"{reasons[0]}: {reasons[-1]}"
    return " ".join(text.split())[:400]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of hits and, when asked for, the total number of matches (capped at 10000)."""

    docs: list[LogDoc]
    total: int | None = None
    total_is_lower_bound: bool = False
    failed_shards: int = 0
    failure: str = ""  # the first shard failure's reason, when some shards failed


class SearchClient:
    """An async Elasticsearch client for searching logpipe's indices; use as ``async with``."""

    def __init__(self, conn: str | EsConnection, *, timeout: float = 15.0) -> None:
        """``conn``: a URL, or a connection with TLS and credentials (``--es-*`` flags, ``LOGPIPE_ES_*``)."""
        if isinstance(conn, str):
            conn = EsConnection(url=conn)
        self.url = redact_urls(conn.url)  # for messages: a URL may carry user:password@
        try:
            auth = es_client_kwargs(conn)
        except EsConnectionError as exc:
            raise SearchError(str(exc)) from None
        self._es = AsyncElasticsearch(conn.urls(), request_timeout=timeout, max_retries=1, retry_on_timeout=False,
                                      **auth)

    async def __aenter__(self) -> SearchClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._es.close()

    def _error(self, exc: Exception) -> SearchError:
        if isinstance(exc, elasticsearch.ConnectionError | elasticsearch.ConnectionTimeout):
            return ElasticsearchUnreachable(self.url, transport_detail(exc))
        if isinstance(exc, elasticsearch.ApiError):
            status = exc.meta.status if exc.meta is not None else 0
            reason = es_reason(exc.body)
            if status in (401, 403):
                return SearchError(
                    f"Elasticsearch at {self.url} refused the request ({status}): {reason} — fix: check "
                    "--es-user with --es-password-file or LOGPIPE_ES_PASSWORD, or --es-api-key-file/LOGPIPE_ES_API_KEY"
                )
            if status == 429 or status >= 500:
                return Unavailable(f"Elasticsearch at {self.url} is unavailable ({status}): {reason}")
            if 400 <= status < 500:
                return BadQuery(f"Elasticsearch rejected the query: {reason}")
            return SearchError(f"Elasticsearch at {self.url} failed ({status}): {reason}")
        if isinstance(exc, elasticsearch.TransportError):
            return ElasticsearchUnreachable(self.url, transport_detail(exc))
        return SearchError(f"Elasticsearch at {self.url}: {exc}")

    async def search(
        self,
        index: str,
        query: Body,
        sort: Sequence[Body],
        size: int,
        *,
        search_after: Sequence[Any] | None = None,
        source: bool = True,
        track_total_hits: bool | int = False,
    ) -> Page:
        """One page of documents matching ``query`` in ``sort`` order (``source=False``: ids and sort only)."""
        try:
            resp = await self._es.search(
                filter_path=None if source else ["hits.hits._id", "hits.hits._index", "hits.hits.sort", "_shards"],
                index=index,
                query=query,
                sort=list(sort),
                size=size,
                search_after=list(search_after) if search_after is not None else None,
                source=source,
                track_total_hits=track_total_hits,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        except Exception as exc:
            raise self._error(exc) from exc
        hits = resp.get("hits") or {}
        total = hits.get("total") if track_total_hits is not False else None
        shards = resp.get("_shards") or {}
        failures = shards.get("failures") or ()
        return Page(
            docs=[LogDoc.from_hit(h) for h in hits.get("hits") or ()],
            total=int(total["value"]) if isinstance(total, Mapping) else None,
            total_is_lower_bound=isinstance(total, Mapping) and total.get("relation") == "gte",
            failed_shards=int(shards.get("failed") or 0),
            failure=es_reason({"error": failures[0].get("reason")}) if failures else "",
        )

    async def aggregate(self, index: str, query: Body, aggs: Body) -> Mapping[str, Any]:
        """Aggregations over every document matching ``query`` (no hits, exact total)."""
        try:
            resp = await self._es.search(
                index=index, query=query, aggs=aggs, size=0, track_total_hits=True,
                ignore_unavailable=True, allow_no_indices=True,
            )
        except Exception as exc:
            raise self._error(exc) from exc
        shards = resp.get("_shards") or {}
        failures = shards.get("failures") or ()
        if failures:  # a partial answer would understate every figure
            reason = es_reason({"error": failures[0].get("reason")})
            raise Unavailable(f"Elasticsearch failed on {len(failures)} shard(s): {reason}")
        return resp.body

    async def msearch(self, index: str, bodies: Sequence[Body]) -> list[list[LogDoc]]:
        """Several searches in one round trip; a failed search raises :class:`BadQuery`."""
        if not bodies:
            return []
        lines: list[Mapping[str, Any]] = []
        for body in bodies:
            lines.append({"index": index, "ignore_unavailable": True, "allow_no_indices": True})
            lines.append(body)
        try:
            resp = await self._es.msearch(searches=lines)
        except Exception as exc:
            raise self._error(exc) from exc
        out: list[list[LogDoc]] = []
        for item in resp["responses"]:
            if "error" in item:
                raise BadQuery(f"Elasticsearch rejected the query: {es_reason(item)}")
            out.append([LogDoc.from_hit(h) for h in item["hits"]["hits"]])
        return out

    async def field_types(self, index: str) -> dict[str, str]:
        """Every field the indices map, with its type (``keyword``, ``long``, ``text``...)."""
        try:
            resp = await self._es.field_caps(
                index=index, fields="*", ignore_unavailable=True, allow_no_indices=True
            )
        except Exception as exc:
            raise self._error(exc) from exc
        out: dict[str, str] = {}
        for name, caps in resp.get("fields", {}).items():
            kinds = [k for k in caps if not k.startswith("_") and k != "object"]
            if kinds and not name.startswith("_"):
                out[name] = kinds[0]
        return out
