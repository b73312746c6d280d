"""``python -m logpipe.dev.services.sls [--host A] [--port N] [--shards N] [--key ID:SECRET ...]``: the local SLS."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from logpipe.dev.services.sls.server import DEV_KEYS, serve


def main() -> None:
    parser = argparse.ArgumentParser(description="local Alibaba Cloud Log Service (SLS) for tests and demos")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument(
        "--port", type=int, default=17010,
        help="TCP port (0: a free one; 80 lets the SDK address it as a bare IP endpoint, as the SLS source needs)",
    )
    parser.add_argument("--shards", type=int, default=1, help="shards of each new logstore")
    parser.add_argument("--key", action="append", default=[], help="AccessKey as ID:SECRET (repeatable)")
    args = parser.parse_args()
    keys = dict(k.split(":", 1) for k in args.key) if args.key else DEV_KEYS
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, keys, host=args.host, shard_count=args.shards))


if __name__ == "__main__":
    main()
