"""The only module of the consumer that talks to the SLS SDK (``aliyun-log-python-sdk``).

The SDK is synchronous (``requests``), so each call runs in a worker thread; the source
(``source.py``) drives the consumer-group protocol itself with the SDK's public ``LogClient``
calls — create/update the group, heartbeat, get/update checkpoints, get cursors, pull logs —
rather than through the SDK's ``ConsumerWorker``, whose own threads and processor callbacks would
take commits out of the loop's hands (a checkpoint may move only over what Elasticsearch
accepted, which only the loop knows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from consumer.sources.sls.config import SlsSourceConfig
from logpipe.core.secrets import redact
from logpipe.core.sls_credentials import FileCredentialsProvider, credentials_provider


class SlsCallError(Exception):
    """An SLS request failed: the service's error code (or ``LogRequestError`` when nothing answered)."""

    def __init__(self, call: str, code: str, message: str, status: int) -> None:
        super().__init__(f"SLS {call}: {code}: {message}"[:500])
        self.call, self.code, self.status = call, code, status


@dataclass(frozen=True, slots=True)
class Pulled:
    """One PullLogs answer: the LogGroups (protobuf objects) and the cursor after them."""

    groups: Sequence[Any]
    next_cursor: str


class SlsConsumerService:
    """One project's consumer-group calls, each in a thread; errors as :class:`SlsCallError`."""

    def __init__(self, cfg: SlsSourceConfig) -> None:
        from aliyun.log import LogClient
        from aliyun.log.credentials import CredentialsProvider

        self.cfg = cfg
        self._creds: FileCredentialsProvider = credentials_provider(cfg)
        # duck-typed: the SDK only calls get_credentials() before signing each request
        self._client = LogClient(cfg.endpoint, credentials_provider=cast(CredentialsProvider, self._creds))
        self._client.set_user_agent(f"logpipe-consumer-{cfg.consumer_group}-{cfg.consumer_name}")

    async def _call(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from aliyun.log import LogException

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), self.cfg.request_timeout)
        except LogException as exc:
            message = redact(str(exc.get_error_message()), self._creds.secrets())
            raise SlsCallError(name, exc.get_error_code(), message, exc.get_resp_status() or 0) from None
        except TimeoutError:
            raise SlsCallError(name, "RequestTimeout", f"no answer in {self.cfg.request_timeout:g}s", 0) from None

    async def ensure_group(self, logstore: str) -> None:
        """Create the consumer group, or update its timeout and order if it exists."""
        c, cfg = self._client, self.cfg
        try:
            await self._call(
                "CreateConsumerGroup", c.create_consumer_group, cfg.project, logstore, cfg.consumer_group,
                cfg.timeout, cfg.in_order,
            )
        except SlsCallError as exc:
            if exc.code != "ConsumerGroupAlreadyExist":
                raise
            await self._call(
                "UpdateConsumerGroup", c.update_consumer_group, cfg.project, logstore, cfg.consumer_group,
                cfg.timeout, cfg.in_order,
            )

    async def heartbeat(self, logstore: str, held: Sequence[int]) -> list[int]:
        cfg = self.cfg
        resp = await self._call(
            "ConsumerGroupHeartBeat", self._client.heart_beat, cfg.project, logstore, cfg.consumer_group,
            cfg.consumer_name, list(held),
        )
        return sorted(int(s) for s in resp.get_shards())

    async def checkpoint(self, logstore: str, shard: int) -> str:
        """The shard's saved cursor ("" when none)."""
        cfg = self.cfg
        resp = await self._call(
            "GetCheckPoint", self._client.get_check_point, cfg.project, logstore, cfg.consumer_group, shard
        )
        points = resp.get_consumer_group_check_points() or []
        return str(points[0].get("checkpoint") or "") if points else ""

    async def save_checkpoint(self, logstore: str, shard: int, cursor: str) -> None:
        """Move the shard's checkpoint; refused (``ConsumerNotMatch``) if this member no longer holds it."""
        cfg = self.cfg
        await self._call(
            "UpdateCheckPoint", self._client.update_check_point, cfg.project, logstore, cfg.consumer_group,
            shard, cursor, cfg.consumer_name, False,
        )

    async def cursor(self, logstore: str, shard: int, where: str) -> str:
        resp = await self._call("GetCursor", self._client.get_cursor, self.cfg.project, logstore, shard, where)
        return str(resp.get_cursor())

    async def pull(self, logstore: str, shard: int, cursor: str) -> Pulled:
        resp = await self._call(
            "PullLogs", self._client.pull_logs, self.cfg.project, logstore, shard, cursor, self.cfg.fetch_groups
        )
        groups = resp.get_loggroup_list().LogGroups if resp.get_log_count() or resp.get_loggroup_count() else ()
        return Pulled(groups=list(groups), next_cursor=str(resp.get_next_cursor() or cursor))

    async def put(
        self, logstore: str, tags: Sequence[tuple[str, str]], contents: Sequence[tuple[str, bytes]], time_s: int
    ) -> None:
        """PutLogs of one log (the dead-letter logstore); returns once SLS answered 200."""
        from aliyun.log import LogItem, PutLogsRequest

        # The SDK's stub says str values; its put_logs takes bytes as they are (LogGroupRaw).
        item = LogItem(time_s, cast(list[tuple[str, str]], list(contents)))
        request = PutLogsRequest(
            self.cfg.project, logstore, "", "logpipe-consumer", [item], logtags=list(tags), compress=True
        )
        await self._call("PutLogs", self._client.put_logs, request)

    async def shards(self, logstore: str) -> list[dict[str, Any]]:
        resp = await self._call("ListShards", self._client.list_shards, self.cfg.project, logstore)
        return list(resp.get_shards_info())
