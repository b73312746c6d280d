"""`logpipe search`: one Component's logs in Elasticsearch, or a live tail with -f."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

DEFAULT_ES_URL = "http://127.0.0.1:9200"

# TLS and credentials of Elasticsearch, shared by search and trace. Secret values are read from files
# or LOGPIPE_ES_PASSWORD / LOGPIPE_ES_API_KEY, never from the command line (it shows in `ps`).
EsUser = Annotated[str | None, typer.Option("--es-user", envvar="LOGPIPE_ES_USERNAME", help="Basic auth user.")]
EsPasswordFile = Annotated[
    str | None,
    typer.Option("--es-password-file", envvar="LOGPIPE_ES_PASSWORD_FILE",
                 help="File holding the user's password (or set LOGPIPE_ES_PASSWORD)."),
]
EsApiKeyFile = Annotated[
    str | None,
    typer.Option("--es-api-key-file", envvar="LOGPIPE_ES_API_KEY_FILE",
                 help="File holding an API key (or set LOGPIPE_ES_API_KEY)."),
]
EsCaFile = Annotated[
    str | None, typer.Option("--es-ca-file", envvar="LOGPIPE_ES_CA_FILE", help="PEM CA of the cluster's certificate.")
]
EsFingerprint = Annotated[
    str | None,
    typer.Option("--es-fingerprint", envvar="LOGPIPE_ES_FINGERPRINT",
                 help="SHA-256 fingerprint of the cluster's certificate, pinned instead of a CA."),
]


EsUrl = Annotated[str, typer.Option("--es-url", envvar="LOGPIPE_ES_URL", help="Elasticsearch base URL.")]
IndexPrefix = Annotated[
    str, typer.Option("--index-prefix", envvar="LOGPIPE_INDEX_PREFIX", help="Indices are <prefix>-<type>-*.")
]


def es_connection_or_exit(url: str, user: str | None, password_file: str | None, api_key_file: str | None,
                          ca_file: str | None, fingerprint: str | None) -> Any:
    """The ``EsConnection`` of the flags; a bad combination prints the key and the fix and exits 2."""
    from logpipe.core.config_base import ConfigError
    from logpipe.core.es_connection import es_connection

    try:
        return es_connection(url, username=user, password_file=password_file, api_key_file=api_key_file,
                             ca_file=ca_file, ssl_fingerprint=fingerprint)
    except ConfigError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(2) from None


class Colour(StrEnum):
    """When to colour the output."""

    auto = "auto"
    always = "always"
    never = "never"


def use_colour(choice: Colour) -> bool:
    """Colour on a terminal (unless NO_COLOR is set), never when piped, unless forced."""
    if choice is Colour.always:
        return True
    if choice is Colour.never:
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def search(
    query: Annotated[
        str | None,
        typer.Argument(help='Free text over the message: all words must occur; "a phrase", -word, a|b, pre*.'),
    ] = None,
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Component (service.name); repeatable.")
    ] = None,
    namespace: Annotated[list[str] | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.")] = None,
    pod: Annotated[list[str] | None, typer.Option("--pod", "-p", help="Pod name; wildcards: 'pay-*'.")] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Log type: access, app, stdout or trace.")
    ] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="HTTP status: 500, 5xx, >=500, 500-504.")] = None,
    level: Annotated[list[str] | None, typer.Option("--level", "-l", help="Log level (case-insensitive).")] = None,
    trace: Annotated[str | None, typer.Option("--trace", help="Only lines carrying this trace id.")] = None,
    where: Annotated[
        str | None, typer.Option("--where", "-w", help='Filter expression, e.g. status>=500 and path~"^/api/pay".')
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Start this long ago (15m, 2h, 1d; 'all': no start). Default 15m.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start, inclusive: ISO 8601 (no offset = UTC), now, or a duration ago.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End, exclusive: ISO 8601 (no offset = UTC), now, or a duration ago.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show the newest N matches (newest last).")] = 100,
    context: Annotated[
        int, typer.Option("--context", "-C", help="Show N events (a stack trace is one) around each hit.")
    ] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines as they are indexed.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="One JSON document per line.")] = False,
    color: Annotated[Colour, typer.Option("--color", help="Colour per pod: auto (on a terminal), always, never.")] = (
        Colour.auto
    ),
    es_url: Annotated[
        str, typer.Option("--es-url", envvar="LOGPIPE_ES_URL", help="Elasticsearch base URL.")
    ] = DEFAULT_ES_URL,
    index_prefix: Annotated[
        str, typer.Option("--index-prefix", envvar="LOGPIPE_INDEX_PREFIX", help="Indices are <prefix>-<type>-*.")
    ] = "logpipe",
    poll_interval: Annotated[float, typer.Option("--poll-interval", help="Seconds between polls with -f.")] = 1.0,
    follow_overlap: Annotated[
        float,
        typer.Option("--follow-overlap", help="Seconds of index time re-read by each -f poll (late visibility)."),
    ] = 30.0,
    es_user: EsUser = None,
    es_password_file: EsPasswordFile = None,
    es_api_key_file: EsApiKeyFile = None,
    es_ca_file: EsCaFile = None,
    es_fingerprint: EsFingerprint = None,
) -> None:
    """Search logs in Elasticsearch; exit 0 with hits, 1 without, 2 on an error (like grep)."""
    # Imported here: the Elasticsearch client costs ~0.2 s to import, which other verbs need not pay.
    from logpipe.tools.search.search_command import SearchOptions, run

    options = SearchOptions(
        text=query,
        components=tuple(component or ()),
        namespaces=tuple(namespace or ()),
        pods=tuple(pod or ()),
        types=tuple(type_ or ()),
        statuses=tuple(status or ()),
        levels=tuple(level or ()),
        trace_id=trace,
        where=where,
        since=since,
        from_=from_,
        to=to,
        limit=limit,
        context=context,
        follow=follow,
        as_json=json_,
        colour=use_colour(color),
        es_url=es_url,
        es=es_connection_or_exit(es_url, es_user, es_password_file, es_api_key_file, es_ca_file, es_fingerprint),
        index_prefix=index_prefix,
        follow_interval_s=poll_interval,
        follow_overlap_s=follow_overlap,
    )
    raise typer.Exit(run(options))
