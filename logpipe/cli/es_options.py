"""The Elasticsearch options of `logpipe search` and `logpipe trace …`, defined once.

``EsUrl`` and ``IndexPrefix`` are typed where each command's help lists them; ``@es_connection_options`` adds
the TLS and credential options after a command's own and hands it ``es``, the ``EsConnection`` they build.
Secret values are read from files or LOGPIPE_ES_PASSWORD / LOGPIPE_ES_API_KEY, never from the command line
(it shows in `ps`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

DEFAULT_ES_URL = "http://127.0.0.1:9200"

EsUrl = Annotated[str, typer.Option("--es-url", envvar="LOGPIPE_ES_URL", help="Elasticsearch base URL.")]
IndexPrefix = Annotated[
    str, typer.Option("--index-prefix", envvar="LOGPIPE_INDEX_PREFIX", help="Indices are <prefix>-<type>-*.")
]

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

# The parameters @es_connection_options adds, in the order of --help (all default to None: not given).
_CONNECTION_OPTIONS: dict[str, Any] = {
    "es_user": EsUser,
    "es_password_file": EsPasswordFile,
    "es_api_key_file": EsApiKeyFile,
    "es_ca_file": EsCaFile,
    "es_fingerprint": EsFingerprint,
}


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


def es_connection_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with --es-user … --es-fingerprint after its own options, called with ``es=`` built from them.

    ``command`` declares ``es_url`` (an ``EsUrl``, placed where its help lists it) and ``es`` (the
    ``EsConnection``, not an option). A bad combination of the flags exits 2 before ``command`` runs.
    Typer reads the options from the signature, so the wrapper shows ``command``'s parameters without ``es``,
    then the connection options.
    """
    own = inspect.signature(command, eval_str=True)
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
        for name, option in _CONNECTION_OPTIONS.items()
    ]

    @functools.wraps(command)
    def with_connection(**options: Any) -> None:
        flags = [options.pop(name) for name in _CONNECTION_OPTIONS]
        command(es=es_connection_or_exit(options["es_url"], *flags), **options)

    with_connection.__signature__ = own.replace(  # type: ignore[attr-defined]
        parameters=[p for p in own.parameters.values() if p.name != "es"] + added
    )
    return with_connection
