"""``python -m logpipe.tools.query FILES ... [options]``: ``logpipe query`` without the full CLI.

The same options and code as ``logpipe query``; it only skips importing the other verbs' modules
(Kafka, Elasticsearch, alerting), which the ``logpipe`` CLI loads on every start.
"""

from __future__ import annotations

import sys

from logpipe.tools.query.command import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m logpipe.tools.query"))
