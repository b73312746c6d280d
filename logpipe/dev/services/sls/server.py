"""The local SLS HTTP server (aiohttp): the requests the SDK sends, answered like the service does.

Endpoints (project from the ``Host`` header, ``<project>.<endpoint host>``):

* ``POST /logstores/{logstore}/shards/lb`` (round robin) and ``/shards/route?key=<hash>``: PutLogs.
  Checks the signature, ``Content-MD5``, decompresses (``x-log-compresstype``: lz4, deflate, zstd or
  none) to exactly ``x-log-bodyrawsize`` bytes, parses the protobuf ``LogGroup`` with the SDK's own
  class, stores it in a readwrite shard.
* ``GET /logstores``: ListLogStores; ``GET /logstores/{logstore}/shards``: ListShards;
  ``POST /logstores/{logstore}/shards/{id}?action=split&key=<hash>`` / ``?action=merge``: SplitShard,
  MergeShard (``store.py``);
* ``GET /logstores/{logstore}/shards/{id}?type=cursor&from=begin|end|<ts>``: GetCursor;
* ``GET /logstores/{logstore}/shards/{id}?type=log&cursor=..&count=..``: PullLogs, a ``LogGroupList``
  (lz4 when asked by ``Accept-Encoding``) with ``x-log-cursor``/``x-log-count``/``x-log-bodyrawsize``;
* ``/logstores/{logstore}/consumergroups[/{group}]``: create, update, delete and list consumer groups,
  heartbeat with shard assignment, update and get checkpoints (``consumer_groups.py``).

Errors are the service's JSON ``{"errorCode": ..., "errorMessage": ...}`` with its HTTP status. Tests
can make the next requests fail (:meth:`SlsServer.fail_next`, e.g. ``403 ReadQuotaExceed``) or wait
(:meth:`SlsServer.slow_next`), split a shard (:meth:`SlsServer.split_shard`) and read what was
stored (:meth:`SlsServer.logs`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import itertools
import json
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lz4.block
from aiohttp import web
from aliyun.log.proto import LogGroupListRaw, LogGroupRaw

from logpipe.dev.services.sls.auth import verify
from logpipe.dev.services.sls.consumer_groups import ConsumerGroup, ConsumerGroups
from logpipe.dev.services.sls.store import Logstore, Shard, Store, decode_cursor, encode_cursor

DEV_KEYS = {"logpipe-dev": "logpipe-dev-secret"}  # the shipper's default key (shipper/sinks/sls/config.py)
MAX_RAW_BODY = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredLog:
    """One stored log, flattened as SLS shows it (``__tag__:<key>`` for the group's tags)."""

    time: int
    time_ns: int
    topic: str
    source: str
    tags: dict[str, str]
    contents: dict[str, bytes]


class SlsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{code}: {message}")


def _decompress(body: bytes, kind: str, raw_size: int) -> bytes:
    if kind in ("", "none"):
        return body
    if kind == "lz4":
        return bytes(lz4.block.decompress(body, uncompressed_size=raw_size))
    if kind == "deflate":
        return zlib.decompress(body)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(body, max_output_size=raw_size)
    raise SlsError(400, "InvalidCompressType", f"unsupported x-log-compresstype {kind!r}")


class SlsServer:
    """An in-memory SLS on 127.0.0.1; ``keys`` maps AccessKey ids to secrets.

    ``tokens`` maps AccessKey ids that are temporary (STS) credentials to the security token they
    must send (``x-acs-security-token``, covered by the signature); change an entry to rotate it.
    """

    def __init__(
        self,
        keys: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_create: bool = True,
        shard_count: int = 1,
        clock: Callable[[], float] = time.time,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        self.keys = dict(keys or DEV_KEYS)
        self.tokens = dict(tokens or {})
        self.host = host
        self.port = port
        self.store = Store(auto_create=auto_create, shard_count=shard_count)
        self.groups = ConsumerGroups(clock)
        self.requests = 0
        self.put_compressions: list[str] = []  # x-log-compresstype of every accepted PutLogs
        self._faults: list[tuple[str | None, int, str, str]] = []
        self._delays: list[tuple[str | None, float]] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/logstores/{logstore}/shards/{mode}", self._shard_post)
        self.app.router.add_get("/logstores", self._list_logstores)
        self.app.router.add_get("/logstores/{logstore}/shards", self._list_shards)
        self.app.router.add_get("/logstores/{logstore}/shards/{shard}", self._shard_get)
        groups = "/logstores/{logstore}/consumergroups"
        self.app.router.add_post(groups, self._create_group)
        self.app.router.add_get(groups, self._list_groups)
        self.app.router.add_put(groups + "/{group}", self._update_group)
        self.app.router.add_delete(groups + "/{group}", self._delete_group)
        self.app.router.add_post(groups + "/{group}", self._group_post)
        self.app.router.add_get(groups + "/{group}", self._get_checkpoints)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        """Listen (``port=0`` picks a free port); returns the endpoint URL."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        return self.endpoint

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(
        self,
        count: int,
        status: int = 503,
        code: str = "ServerBusy",
        message: str = "injected",
        *,
        only: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with this error (before any other check); ``only``
        limits it to one kind of request: ``put``, ``pull``, ``cursor``, ``heartbeat``, ``checkpoint``."""
        self._faults.extend([(only, status, code, message)] * count)

    def slow_next(self, count: int, seconds: float, *, only: str | None = None) -> None:
        """Make the next ``count`` requests (of kind ``only``, as in :meth:`fail_next`) wait first."""
        self._delays.extend([(only, seconds)] * count)

    def split_shard(self, project: str, logstore: str, shard: int) -> list[int]:
        """Split a readwrite shard in the middle of its range (as SplitShard does); the new ids."""
        store = self.store.get(project, logstore)
        if store is None or shard not in store.shards:
            raise KeyError(f"{project}/{logstore} has no shard {shard}")
        s = store.shards[shard]
        middle = f"{(s.begin + s.end) // 2:032x}"
        return [child.id for child in store.split(shard, middle)[1:]]

    def shards(self, project: str, logstore: str) -> list[dict[str, object]]:
        store = self.store.projects.get(project, {}).get(logstore)
        return [s.describe() for s in store.shards.values()] if store else []

    def logs(self, project: str, logstore: str) -> list[StoredLog]:
        """Everything stored in a logstore, shard by shard, each in order."""
        store = self.store.projects.get(project, {}).get(logstore)
        raws = [raw for shard in store.shards.values() for raw in shard.groups] if store else []
        out: list[StoredLog] = []
        for raw in raws:
            group = LogGroupRaw()
            group.ParseFromString(raw)
            tags = {f"__tag__:{t.Key}": t.Value for t in group.LogTags}
            for entry in group.Logs:
                contents = {c.Key: bytes(c.Value) for c in entry.Contents}
                out.append(StoredLog(entry.Time, entry.Time_ns, group.Topic, group.Source, tags, contents))
        return out

    # -- request handling ------------------------------------------------------------------------

    @staticmethod
    def _kind(request: web.Request) -> str:
        q = request.query
        if request.path.endswith(("/shards/lb", "/shards/route")):
            return "put"
        if "/consumergroups" in request.path:
            return q.get("type", "group")
        return {"log": "pull", "cursor": "cursor"}.get(q.get("type", ""), "other")

    async def _check(self, request: web.Request) -> str:
        """Fault injection, then the signature; returns the project named by the Host header."""
        self.requests += 1
        kind = self._kind(request)
        delay = next((d for d in self._delays if d[0] in (None, kind)), None)
        if delay is not None:
            self._delays.remove(delay)
            await asyncio.sleep(delay[1])
        fault = next((f for f in self._faults if f[0] in (None, kind)), None)
        if fault is not None:
            self._faults.remove(fault)
            raise SlsError(*fault[1:])
        headers = {k.lower(): v for k, v in request.headers.items()}
        error = verify(request.method, request.path, dict(request.query), headers, self.keys)
        if error is not None:
            raise SlsError(error.status, error.code, error.message)
        key_id = headers.get("authorization", "")[4:].partition(":")[0]
        want = self.tokens.get(key_id)
        if want is not None and not hmac.compare_digest(headers.get("x-acs-security-token", ""), want):
            # The service's answer to a stale STS token (the token itself is never echoed).
            raise SlsError(401, "SecurityTokenExpired", "the security token is expired or invalid")
        host = headers.get("host", "").rsplit(":", 1)[0] if not headers.get("host", "").startswith("[") else ""
        project = host.split(".", 1)[0] if "." in host and not _is_ip(host) else ""
        if not project:
            raise SlsError(400, "ProjectNotExist", f"no project in the Host header {headers.get('host')!r}")
        if not self.store.project_exists(project):
            raise SlsError(404, "ProjectNotExist", f"The Project does not exist : {project}")
        return project

    def _logstore(self, project: str, name: str) -> Logstore:
        store = self.store.get(project, name)
        if store is None:
            raise SlsError(404, "LogStoreNotExist", f"logstore {name} does not exist")
        return store

    @staticmethod
    def _shard(store: Logstore, text: str) -> Shard:
        shard = store.shards.get(int(text)) if text.isdigit() else None
        if shard is None:
            raise SlsError(400, "ShardNotExist", f"shard {text} does not exist")
        return shard

    def _group(self, project: str, store: Logstore, name: str) -> ConsumerGroup:
        group = self.groups.get(project, store.name, name)
        if group is None:
            raise SlsError(404, "ConsumerGroupNotExist", f"consumer group {name} does not exist")
        return group

    @staticmethod
    async def _json(request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except ValueError:
            raise SlsError(400, "PostBodyInvalid", "the body is not JSON") from None

    @staticmethod
    def _error(exc: SlsError) -> web.Response:
        return web.json_response(
            {"errorCode": exc.code, "errorMessage": exc.message},
            status=exc.status,
            headers={"x-log-requestid": uuid.uuid4().hex.upper()[:24]},
        )

    @staticmethod
    def _ok(**kwargs: Any) -> dict[str, str]:
        return {"x-log-requestid": uuid.uuid4().hex.upper()[:24], **kwargs}

    async def _shard_post(self, request: web.Request) -> web.Response:
        if request.match_info["mode"] in ("lb", "route"):
            return await self._put_logs(request)
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            shard = self._shard(store, request.match_info["mode"])
            action = request.query.get("action", "")
            try:
                if action == "split":
                    changed = store.split(shard.id, request.query.get("key", ""))
                elif action == "merge":
                    changed = store.merge(shard.id)
                else:
                    raise SlsError(400, "ParameterInvalid", "action must be split or merge")
            except ValueError as exc:
                raise SlsError(400, "ParameterInvalid", str(exc)) from None
            return web.json_response([s.describe() for s in changed], headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _put_logs(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            body = await request.read()
            md5 = request.headers.get("Content-MD5", "")
            if md5 and hashlib.md5(body).hexdigest().upper() != md5.upper():
                raise SlsError(400, "InvalidContentMD5", "Content-MD5 does not match the body")
            raw_size_text = request.headers.get("x-log-bodyrawsize", "")
            if not raw_size_text.isdigit():
                raise SlsError(400, "PostBodyInvalid", "missing or invalid x-log-bodyrawsize")
            raw_size = int(raw_size_text)
            if raw_size > MAX_RAW_BODY:
                raise SlsError(413, "PostBodyTooLarge", f"body of {raw_size} bytes exceeds {MAX_RAW_BODY}")
            kind = request.headers.get("x-log-compresstype", "").lower()
            try:
                raw = _decompress(body, kind, raw_size)
            except SlsError:
                raise
            except Exception as exc:
                raise SlsError(400, "PostBodyInvalid", f"cannot decompress the body ({kind}): {exc}") from None
            if len(raw) != raw_size:
                raise SlsError(400, "PostBodyInvalid", f"x-log-bodyrawsize {raw_size} != {len(raw)} bytes")
            group = LogGroupRaw()
            try:
                group.ParseFromString(raw)
            except Exception as exc:
                raise SlsError(400, "PostBodyInvalid", f"the body is not a LogGroup: {exc}") from None
            store = self._logstore(project, request.match_info["logstore"])
            peer = request.remote or ""
            now = int(time.time())
            group.LogTags.add(Key="__client_ip__", Value=peer)
            group.LogTags.add(Key="__receive_time__", Value=str(now))
            self.put_compressions.append(kind or "none")
            key = request.query.get("key") if request.match_info["mode"] == "route" else None
            store.append(store.pick(key), group.SerializeToString(), now)
            return web.Response(status=200, headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _list_logstores(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            names = sorted(self.store.projects.get(project, {}))
            offset = int(request.query.get("offset", "0") or 0)
            size = int(request.query.get("size", "100") or 100)
            page = names[offset : offset + size]
            body = {"count": len(page), "total": len(names), "logstores": page}
            return web.json_response(body, headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _list_shards(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            return web.json_response([s.describe() for s in store.shards.values()], headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _shard_get(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            shard = self._shard(store, request.match_info["shard"])
            kind = request.query.get("type")
            if kind == "cursor":
                position = self.store.cursor_at(shard, request.query.get("from", ""))
                if position is None:
                    raise SlsError(400, "ParameterInvalid", "from must be begin, end or a unix time")
                return web.json_response({"cursor": encode_cursor(position)}, headers=self._ok())
            if kind == "log":
                return self._pull(request, shard)
            raise SlsError(400, "ParameterInvalid", f"unsupported type {kind!r}")
        except SlsError as exc:
            return self._error(exc)

    def _pull(self, request: web.Request, store: Shard) -> web.Response:
        start = decode_cursor(request.query.get("cursor", ""))
        if start is None or start > len(store.groups):
            raise SlsError(400, "InvalidCursor", "the cursor is invalid or out of range")
        count_text = request.query.get("count", "1000")
        count = int(count_text) if count_text.isdigit() else 1000
        end = decode_cursor(request.query.get("end_cursor", "")) if "end_cursor" in request.query else None
        stop = min(len(store.groups), start + count, end if end is not None else len(store.groups))
        stop = max(stop, start)
        out = LogGroupListRaw()
        for raw in itertools.islice(store.groups, start, stop):
            out.LogGroups.add().ParseFromString(raw)
        raw_body = out.SerializeToString()
        headers = self._ok(
            **{
                "x-log-cursor": encode_cursor(stop),
                "x-log-count": str(stop - start),
                "x-log-bodyrawsize": str(len(raw_body)),
                "Content-Type": "application/x-protobuf",
            }
        )
        body = raw_body
        if "lz4" in request.headers.get("Accept-Encoding", "") and raw_body:
            body = lz4.block.compress(raw_body, store_size=False)
            headers["x-log-compresstype"] = "lz4"
        return web.Response(body=body, headers=headers)


    # -- consumer groups ---------------------------------------------------------------------------

    async def _create_group(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            body = await self._json(request)
            name = str(body.get("consumerGroup", "")) if isinstance(body, dict) else ""
            if not name:
                raise SlsError(400, "ParameterInvalid", "consumerGroup is required")
            groups = self.groups.of(project, store.name)
            if name in groups:
                raise SlsError(400, "ConsumerGroupAlreadyExist", f"consumer group {name} already exists")
            groups[name] = ConsumerGroup(name, int(body.get("timeout", 60)), bool(body.get("order", False)))
            return web.Response(status=200, headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _list_groups(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            groups = self.groups.of(project, store.name).values()
            return web.json_response([g.describe() for g in groups], headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _update_group(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            group = self._group(project, store, request.match_info["group"])
            body = await self._json(request)
            if isinstance(body, dict):
                group.timeout = int(body.get("timeout", group.timeout))
                group.in_order = bool(body.get("order", group.in_order))
            return web.Response(status=200, headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _delete_group(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            self._group(project, store, request.match_info["group"])
            del self.groups.of(project, store.name)[request.match_info["group"]]
            return web.Response(status=200, headers=self._ok())
        except SlsError as exc:
            return self._error(exc)

    async def _group_post(self, request: web.Request) -> web.Response:
        """Heartbeat (``type=heartbeat``) or UpdateCheckPoint (``type=checkpoint``)."""
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            group = self._group(project, store, request.match_info["group"])
            member = request.query.get("consumer", "")
            body = await self._json(request)
            kind = request.query.get("type")
            if kind == "heartbeat":
                held = [int(s) for s in body] if isinstance(body, list) else []
                shards = self.groups.heartbeat(group, store, member, held)
                return web.json_response(shards, headers=self._ok())
            if kind == "checkpoint":
                if not isinstance(body, dict) or "shard" not in body:
                    raise SlsError(400, "ParameterInvalid", "the body must hold shard and checkpoint")
                shard = self._shard(store, str(body["shard"]))
                cursor = str(body.get("checkpoint", ""))
                position = decode_cursor(cursor)
                if position is None or position > len(shard.groups):
                    raise SlsError(400, "InvalidCursor", "the checkpoint is not a cursor of this shard")
                force = request.query.get("forceSuccess", "True").lower() == "true"
                if not self.groups.update_checkpoint(group, shard.id, cursor, member, force):
                    raise SlsError(400, "ConsumerNotMatch", f"shard {shard.id} is not held by {member}")
                return web.Response(status=200, headers=self._ok())
            raise SlsError(400, "ParameterInvalid", f"unsupported type {kind!r}")
        except SlsError as exc:
            return self._error(exc)

    async def _get_checkpoints(self, request: web.Request) -> web.Response:
        try:
            project = await self._check(request)
            store = self._logstore(project, request.match_info["logstore"])
            group = self._group(project, store, request.match_info["group"])
            text = request.query.get("shard")
            shard = self._shard(store, text).id if text is not None else None
            return web.json_response(self.groups.checkpoints(group, store, shard), headers=self._ok())
        except SlsError as exc:
            return self._error(exc)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def serve(
    port: int, keys: Mapping[str, str] | None = None, *, host: str = "127.0.0.1", shard_count: int = 1
) -> None:
    """Run until cancelled (``python -m logpipe.dev.services.sls``)."""
    server = SlsServer(keys, host=host, port=port, shard_count=shard_count)
    endpoint = await server.start()
    print(f"local SLS listening on {endpoint} (AccessKey id(s): {', '.join(server.keys)})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
