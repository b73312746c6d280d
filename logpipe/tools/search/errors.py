"""Errors of ``logpipe search``/``trace``: each names its cause in one line; the CLI exits 2 on them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

# Like grep: something found, nothing found, an error.
EXIT_FOUND, EXIT_NONE, EXIT_ERROR = 0, 1, 2


class SearchError(Exception):
    """A search that cannot run; ``str()`` is the message shown to the user."""


class Unavailable(SearchError):
    """Elasticsearch cannot answer now (unreachable, overloaded, shards not ready): worth retrying."""


class ElasticsearchUnreachable(Unavailable):
    """No answer from the Elasticsearch URL (refused, timed out, DNS)."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        super().__init__(f"Elasticsearch unreachable at {url}: {detail} — check --es-url or LOGPIPE_ES_URL")


class UnknownField(SearchError):
    """A field that no searched index maps."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        hint = ""
        if known:
            hint = " — known fields include: " + ", ".join(sorted(known)[:12])
        super().__init__(f"unknown field {name!r}{hint}")


class BadQuery(SearchError):
    """Elasticsearch (or our own parser) rejected the query; the message carries the reason."""


class BadArgument(SearchError):
    """A command-line value that cannot be used (a time, a limit, a combination of flags)."""


def run_command(command: str, main: Coroutine[Any, Any, int], none_note: str | None = None) -> int:
    """Run a command's ``main`` to its exit code; ``command`` (``logpipe trace find``) prefixes what goes to stderr.

    A ``SearchError`` is one line on stderr and exit 2; a reader that closed the pipe (``| head``) is exit 0;
    when ``main`` found nothing (exit 1) ``none_note``, if given, says so on stderr.
    """
    try:
        code = asyncio.run(main)
    except SearchError as exc:
        sys.stderr.write(f"{command}: {exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_FOUND
    if code == EXIT_NONE and none_note is not None:
        sys.stderr.write(f"{command}: {none_note}\n")
    return code
