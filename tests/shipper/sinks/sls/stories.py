"""Helpers of the SLS tests: lines of a few pods, a running local SLS, and reading it back with the SDK."""

from __future__ import annotations

from typing import Any

from aliyun.log import LogClient

from logpipe.core.envelope import LineRecord, SourceMeta


def meta(pod: str = "cart-1", log_type: str = "access", namespace: str = "shop") -> SourceMeta:
    return SourceMeta(
        node="node-1",
        namespace=namespace,
        pod=pod,
        pod_uid=f"uid-{pod}",
        container="app",
        component=pod.rsplit("-", 1)[0],
        log_type=log_type,
        path=f"/var/lib/kubelet/pods/uid-{pod}/volumes/logs/{log_type}.log",
        file_id=f"fingerprint::{pod}-{log_type}",
    )


def lines(m: SourceMeta, count: int, start_offset: int = 0, text: str = "line") -> list[LineRecord]:
    """``count`` lines of one file, each with its offset and a non-ASCII, non-UTF-8 tail."""
    out = []
    offset = start_offset
    for i in range(count):
        value = f'{{"n": {i}, "msg": "{text} {i} ünï"}}'.encode() + b"\xff"
        out.append(LineRecord(m, offset, value, 1795780800123 + i, ("truncated",) if i == 3 else ()))
        offset += len(value) + 1
    return out


def sdk_client(endpoint: str, key_id: str, secret: str, token: str | None = None) -> LogClient:
    """The SDK's own client, for reading back. The SDK cannot address an ``ip:port`` endpoint
    (``Util.is_row_ip`` refuses the port and it would resolve ``<project>.127.0.0.1``): one attribute
    tells it to put the project in the Host header only, as it does for a bare IP."""
    client = LogClient(endpoint, key_id, secret, securityToken=token)
    client._isRowIp = True  # type: ignore[attr-defined]
    return client


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def pull_all(client: LogClient, project: str, logstore: str) -> list[dict[str, Any]]:
    """Every log of the logstore pulled with the SDK, flattened like SLS shows it (``__topic__``,
    ``__source__``, ``__time__``, ``__tag__:<key>``) with contents as the exact bytes stored (the SDK's
    own flattening decodes them and drops invalid UTF-8)."""
    out: list[dict[str, Any]] = []
    for shard in client.list_shards(project, logstore).get_shards_info():
        cursor = client.get_cursor(project, logstore, shard["shardID"], "begin").get_cursor()
        while True:
            resp = client.pull_logs(project, logstore, shard["shardID"], cursor, count=100)
            for group in resp.get_loggroup_list().LogGroups:
                tags = {f"__tag__:{t.Key}": t.Value for t in group.LogTags}
                for log in group.Logs:
                    item: dict[str, Any] = {"__time__": log.Time, "__topic__": group.Topic, "__source__": group.Source}
                    item.update(tags)
                    item.update({c.Key: _bytes(c.Value) for c in log.Contents})
                    out.append(item)
            if resp.get_loggroup_count() == 0:
                break
            cursor = resp.get_next_cursor()
    return out
