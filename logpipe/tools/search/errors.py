"""Errors of ``logpipe search``/``trace``: each names its cause in one line; the CLI exits 2 on them."""

from __future__ import annotations


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
