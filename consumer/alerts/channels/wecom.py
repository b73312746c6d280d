"""WeCom (enterprise WeChat) group robot: ``{"msgtype": "markdown", "markdown": {"content": ...}}``.

The robot answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero ``errcode`` is a
failure (45009, the robot's own rate limit, is retried; others such as an invalid key are not).
Content is capped at the robot's 4096 bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from consumer.alerts.channels.base import Notification, PermanentError
from consumer.alerts.channels.http import HttpChannel
from consumer.alerts.rules import WeComChannel

MAX_BYTES = 4096
_RETRYABLE_ERRCODES = {45009, -1}  # -1: system busy


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def _inline(text: str) -> str:
    # backticks would end the code span; newlines would end the quote
    return text.replace("`", "'").replace("\n", " ")


def to_markdown(n: Notification, mention: list[str] | None = None) -> str:
    """The robot's markdown for ``n``: status, summary, labels, why, samples, the search and trace commands."""
    firing = n.status == "firing"
    colour = "warning" if firing else "info"
    head = "FIRING" if firing else "RESOLVED"
    severity = n.labels.get("severity", "")
    lines = [f'## <font color="{colour}">[{head}] {n.rule}</font> {severity}']
    summary = n.annotations.get("summary")
    if summary:
        lines.append(f"> {_inline(summary)}")
    for k, v in n.labels.items():
        if k not in ("alertname", "severity") and v:
            lines.append(f'> {k}: <font color="comment">{_inline(v)}</font>')
    if n.why:
        lines.append(f"**why**: {_inline(n.why)}")
    description = n.annotations.get("description")
    if description:
        lines.append(_inline(description))
    if firing and n.samples:
        lines.append("**samples**:")
        lines += [f"`{_inline(s)}`" for s in n.samples]
    search = n.annotations.get("search")
    if search:
        lines.append(f"**context**: `{_inline(search)}`")
    trace = n.annotations.get("trace")
    if trace and firing:
        lines.append(f"**trace**: `{_inline(trace)}`")
    if mention:
        lines.append(" ".join(f"<@{u}>" for u in mention))
    return _truncate_utf8("\n".join(lines), MAX_BYTES)


def to_message(n: Notification, mention: list[str] | None = None) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": to_markdown(n, mention)}}


class WeComSender(HttpChannel):
    """POSTs one markdown message per notification to the robot's webhook."""

    config: WeComChannel

    async def deliver(self, batch: list[Notification]) -> None:
        for n in batch:
            _, body = await self.post_json(self.config.webhook, to_message(n, self.config.mention))
            try:
                answer = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                answer = {}
            code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
            if code:
                msg = f"WeCom errcode {code}: {answer.get('errmsg', '')}"
                if code in _RETRYABLE_ERRCODES:
                    raise RuntimeError(msg)
                raise PermanentError(msg)
