"""``python -m logpipe.dev.services.sls [--port N] [--key ID:SECRET ...]``: the local SLS."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from logpipe.dev.services.sls.server import DEV_KEYS, serve


def main() -> None:
    parser = argparse.ArgumentParser(description="local Alibaba Cloud Log Service (SLS) for tests and demos")
    parser.add_argument("--port", type=int, default=17010, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--key", action="append", default=[], help="AccessKey as ID:SECRET (repeatable)")
    args = parser.parse_args()
    keys = dict(k.split(":", 1) for k in args.key) if args.key else DEV_KEYS
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, keys))


if __name__ == "__main__":
    main()
