"""A local Alibaba Cloud Log Service (SLS) that speaks the wire protocol of the unmodified SDK.

``auth.py`` verifies request signatures, ``store.py`` keeps logstores in memory, ``server.py`` is
the aiohttp application (PutLogs, ListLogStores, ListShards, GetCursor, PullLogs). Run it with
``python -m logpipe.dev.services.sls --port 17010``.
"""

from logpipe.dev.services.sls.server import SlsServer, StoredLog

__all__ = ["SlsServer", "StoredLog"]
