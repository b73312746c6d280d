"""Leaving the group as a static member: a clean stop hands the partitions over at once.

A static member (``group.instance.id``, ``kafka.instance_id``) sends no LeaveGroup when it closes —
KIP-345: the broker expects it back under the same id and keeps its partitions until the session
times out. That is right for a container restart (same pod, same ``$POD_NAME``: it takes them back
at once) and wrong for a SIGTERM (a rolling update or a scale-down: the pod is gone for good, and
its partitions would wait ``kafka.session_timeout``).

aiokafka has no public call for it (its LeaveGroup is v0/v1, which cannot name an instance id), so
after a clean stop the member is removed with the admin API KIP-345 made for this,
``RemoveMembersFromConsumerGroup`` (LeaveGroup v3+ naming the instance id), through kafka-python's
public ``KafkaAdminClient.remove_group_members``. It is a blocking client: run in a thread, bounded
by ``timeout``. A failure only costs the session timeout, as before: reported, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from consumer.config import KafkaConfig
from logpipe.core.events import Event, EventLog
from logpipe.core.kafka_security import aiokafka_kwargs

log = logging.getLogger("logpipe.consumer")
_log = EventLog(log)


@dataclass(frozen=True, slots=True)
class StaticMemberLeft(Event):
    """The stopped static member was removed from its group: the others rebalance now."""

    group: str
    instance_id: str
    seconds: float

    def emit(self) -> None:
        _log(logging.INFO, "StaticMemberLeft", self.fields())


@dataclass(frozen=True, slots=True)
class StaticLeaveFailed(Event):
    """Removing the stopped static member failed: its partitions move after the session timeout."""

    group: str
    instance_id: str
    error: str

    def emit(self) -> None:
        _log(logging.WARNING, "StaticLeaveFailed", self.fields())


def _remove(cfg: KafkaConfig, instance_id: str, timeout: float) -> None:
    from kafka.admin import KafkaAdminClient, MemberToRemove  # only on the way out of a static member
    from kafka.errors import NoError

    admin = KafkaAdminClient(
        bootstrap_servers=cfg.bootstrap.split(","), client_id=f"{cfg.client_id}-leave",
        request_timeout_ms=int(timeout * 1000), **aiokafka_kwargs(cfg),
    )
    try:
        result = admin.remove_group_members(
            cfg.group_id, [MemberToRemove(group_instance_id=instance_id, reason="logpipe consumer stopped")]
        )
    finally:
        admin.close()
    errors = [err.__name__ for err in result.values() if err is not NoError]
    if errors:  # e.g. UnknownMemberIdError: it was no member (any more)
        raise RuntimeError(", ".join(errors))


async def leave_as_static_member(cfg: KafkaConfig, timeout: float = 5.0) -> bool:
    """Remove ``cfg.instance_id`` from ``cfg.group_id`` (after the consumer stopped); True if it was."""
    instance_id = cfg.instance_id
    if not instance_id:
        return False  # a dynamic member left with its own LeaveGroup on close
    started = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.to_thread(_remove, cfg, instance_id, timeout), timeout + 1.0)
    except Exception as exc:
        StaticLeaveFailed(cfg.group_id, instance_id, repr(exc)[:300]).emit()
        return False
    StaticMemberLeft(cfg.group_id, instance_id, round(time.monotonic() - started, 3)).emit()
    return True
