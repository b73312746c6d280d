"""How a Kafka client authenticates and encrypts: one model for the shipper and the consumer.

:class:`KafkaSecurity` holds the ``kafka.security_protocol``/``sasl_*``/``ssl_*`` keys; the shipper's
sink config and the consumer's Kafka config derive from it, so both sides take the same keys. The
composition roots turn it into client settings here and nowhere else: :func:`aiokafka_kwargs` (the
producer, consumer and admin clients), :func:`ssl_context` and :func:`librdkafka_settings`.

Start-up failures are turned into one line naming the broker, the mechanism and the fix by
:func:`diagnose` (after :func:`probe` tried the TLS handshake itself, because a client library
reports an untrusted CA or a wrong host name only as "cannot connect").
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from logpipe.core.config_base import StrictModel
from logpipe.core.secrets import Secret, SecretUnavailable, SecretValue, redact, secret_value

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

#: The environment variable read for the SASL password when neither key is set.
PASSWORD_ENV = "LOGPIPE_KAFKA_SASL_PASSWORD"


class KafkaSecurityError(Exception):
    """A Kafka connection refused for a security reason; ``str()`` is the one line to print."""


class KafkaSecurity(StrictModel):
    """Authentication and encryption of the Kafka connection (the same keys for ship and consume)."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    """``PLAINTEXT``, ``SSL`` (TLS), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL over TLS: managed Kafka)."""
    sasl_mechanism: SaslMechanism | None = None
    """``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``; required with the ``SASL_*`` protocols."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: Secret | None = None
    """SASL password inline (prefer ``sasl_password_file`` or the ``LOGPIPE_KAFKA_SASL_PASSWORD`` variable)."""
    sasl_password_file: str | None = None
    """File holding the SASL password (a mounted Secret); read whenever a client is built (each start
    attempt), so a password that arrives late is picked up while retrying; a running client keeps the
    password it started with until the process restarts (rotate by restarting, e.g. a rollout)."""
    ssl_cafile: str | None = None
    """PEM file of the CA(s) that signed the brokers' certificates; unset: the system's trust store."""
    ssl_certfile: str | None = None
    """Client certificate (PEM) for mutual TLS, with ``ssl_keyfile``."""
    ssl_keyfile: str | None = None
    """Private key (PEM, unencrypted) of ``ssl_certfile``."""
    ssl_check_hostname: bool = True
    """Check that the broker's certificate names the host connected to; turn off only for IP-only test rigs."""

    @model_validator(mode="after")
    def _security_consistent(self) -> KafkaSecurity:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        if sasl and self.sasl_mechanism is None:
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism — fix: set "
                "kafka.sasl_mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (ask the cluster's operator which)"
            )
        if sasl and not self.sasl_username:
            raise ValueError("SASL needs sasl_username — fix: set kafka.sasl_username")
        if not sasl and (self.sasl_mechanism or self.sasl_username or self.sasl_password or self.sasl_password_file):
            raise ValueError(
                f"sasl_* keys are set but security_protocol is {self.security_protocol} — fix: set "
                "kafka.security_protocol to SASL_SSL (or SASL_PLAINTEXT), or remove the sasl_* keys"
            )
        if self.sasl_password is not None and self.sasl_password_file is not None:
            raise ValueError("sasl_password and sasl_password_file are both set — fix: keep one (the file)")
        if not tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            raise ValueError(
                f"ssl_* keys are set but security_protocol is {self.security_protocol} — fix: set "
                "kafka.security_protocol to SSL or SASL_SSL, or remove the ssl_* keys"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together — fix: set both (mutual TLS) or neither")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def password(self) -> SecretValue:
        """Where the SASL password comes from: the file, the inline key, or ``LOGPIPE_KAFKA_SASL_PASSWORD``."""
        return secret_value("kafka.sasl_password", self.sasl_password, self.sasl_password_file, PASSWORD_ENV)

    def mechanism_label(self) -> str:
        """``SASL_SSL/SCRAM-SHA-512`` or ``SSL`` (for messages)."""
        return f"{self.security_protocol}/{self.sasl_mechanism}" if self.uses_sasl else self.security_protocol


def ssl_context(sec: KafkaSecurity) -> ssl.SSLContext | None:
    """The client TLS context of ``sec`` (None for the plaintext protocols).

    Raises :class:`KafkaSecurityError` when a file named by a key cannot be loaded.
    """
    if not sec.uses_tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=sec.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(
            f"kafka.ssl_cafile {sec.ssl_cafile}: cannot load it ({_why(exc)}) — fix: point it at the CA's PEM file"
        ) from None
    ctx.check_hostname = sec.ssl_check_hostname
    if sec.ssl_certfile and sec.ssl_keyfile:
        try:
            ctx.load_cert_chain(sec.ssl_certfile, sec.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(
                f"kafka.ssl_certfile/ssl_keyfile {sec.ssl_certfile}, {sec.ssl_keyfile}: cannot load them "
                f"({_why(exc)}) — fix: a PEM certificate and its unencrypted PEM key"
            ) from None
    return ctx


def aiokafka_kwargs(sec: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``/``AIOKafkaAdminClient``.

    The password is read now (a rotated file is picked up by the next client built); a client
    built here must be started through :func:`start_guarded`.
    """
    kw: dict[str, Any] = {"security_protocol": sec.security_protocol}
    ctx = ssl_context(sec)
    if ctx is not None:
        kw["ssl_context"] = ctx
    if sec.uses_sasl:
        kw["sasl_mechanism"] = sec.sasl_mechanism
        kw["sasl_plain_username"] = sec.sasl_username
        # An unreadable file must not crash a constructor: start_guarded reports it before connecting.
        kw["sasl_plain_password"] = _password_or_none(sec) or ""
    return kw


def librdkafka_settings(sec: KafkaSecurity) -> dict[str, str]:
    """The same settings for a librdkafka client (confluent-kafka), as its configuration keys."""
    out = {"security.protocol": sec.security_protocol.lower()}
    if sec.uses_tls:
        if sec.ssl_cafile:
            out["ssl.ca.location"] = sec.ssl_cafile
        if sec.ssl_certfile and sec.ssl_keyfile:
            out["ssl.certificate.location"] = sec.ssl_certfile
            out["ssl.key.location"] = sec.ssl_keyfile
        out["ssl.endpoint.identification.algorithm"] = "https" if sec.ssl_check_hostname else "none"
    if sec.uses_sasl:
        assert sec.sasl_mechanism is not None and sec.sasl_username is not None
        out["sasl.mechanisms"] = sec.sasl_mechanism
        out["sasl.username"] = sec.sasl_username
        out["sasl.password"] = _password(sec)
    return out


def _password_or_none(sec: KafkaSecurity) -> str | None:
    try:
        return sec.password().get() if sec.uses_sasl else None
    except SecretUnavailable:
        return None


def _password(sec: KafkaSecurity) -> str:
    try:
        return sec.password().require()
    except SecretUnavailable as exc:
        raise KafkaSecurityError(str(exc)) from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    if isinstance(exc, OSError):
        return exc.strerror or exc.__class__.__name__
    return exc.__class__.__name__


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for part in bootstrap.split(","):
        host, _, port = part.strip().rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


async def probe(sec: KafkaSecurity, bootstrap: str, timeout: float = 5.0) -> None:
    """Check what a client library would only report as "cannot connect", within ``timeout``.

    With TLS: the handshake with the first bootstrap broker that accepts TCP (an untrusted CA, a
    certificate for another host, a port that does not speak TLS). Without TLS: that the port does
    not expect TLS (a plaintext client on a TLS listener otherwise waits for its request timeout).
    Raises :class:`KafkaSecurityError` with one line; returns quietly when no broker accepts TCP
    (the client's own error says so) or all is well.
    """
    ctx = ssl_context(sec)
    for host, port in _hosts(bootstrap):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError):
            continue
        try:
            if ctx is not None:
                await _tls_handshake(sec, ctx, host, port, reader, writer, timeout)
            else:
                await _plaintext_check(sec, host, port, reader, writer, timeout)
        finally:
            writer.close()
        return


async def _tls_handshake(sec: KafkaSecurity, ctx: ssl.SSLContext, host: str, port: int,
                         reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    broker = f"{host}:{port}"
    try:
        await asyncio.wait_for(writer.start_tls(ctx, server_hostname=host), timeout)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in (62, 64) or "mismatch" in (exc.verify_message or "").lower():  # host / IP mismatch
            raise KafkaSecurityError(
                f"kafka: broker {broker} ({sec.mechanism_label()}): its TLS certificate is not for host {host!r} — "
                "fix: use the host name the certificate names in kafka.bootstrap (or, for a test rig only, "
                "kafka.ssl_check_hostname: false)"
            ) from None
        raise KafkaSecurityError(
            f"kafka: broker {broker} ({sec.mechanism_label()}): its TLS certificate is not trusted "
            f"({exc.verify_message}) — fix: set kafka.ssl_cafile to the CA that signed the broker's certificate"
        ) from None
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
        raise KafkaSecurityError(
            f"kafka: broker {broker} ({sec.mechanism_label()}): no TLS handshake ({_why(exc)}) — fix: this port "
            "may be a plaintext listener: use the broker's SSL/SASL_SSL port or the matching kafka.security_protocol"
        ) from None


# A TLS listener answers garbage with an alert (0x15) record, never with a Kafka length prefix this big.
_TLS_RECORD_TYPES = (0x15, 0x16)

# An ApiVersions v0 request (api key 18) with correlation id 1 and client id "logpipe-probe".
_API_VERSIONS = bytes.fromhex("00000017" "0012" "0000" "00000001" "000d") + b"logpipe-probe"


async def _plaintext_check(sec: KafkaSecurity, host: str, port: int,
                           reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    """A Kafka request must get a Kafka answer; a TLS listener closes the connection instead."""
    writer.write(_API_VERSIONS)
    try:
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(4), timeout)
    except asyncio.IncompleteReadError:
        head = b""
    except (ConnectionError, TimeoutError, OSError):
        head = b""
    if len(head) == 4 and head[0] not in _TLS_RECORD_TYPES:
        return
    raise KafkaSecurityError(
        f"kafka: broker {host}:{port} ({sec.mechanism_label()}): the broker closed the connection without "
        "answering — fix: this port probably expects TLS: set kafka.security_protocol to SSL or SASL_SSL "
        "(with kafka.ssl_cafile), or use the broker's plaintext port"
    )


class _ConnectErrors(logging.Handler):
    """Holds aiokafka's log records while a client starts: its exception says only "Unable to
    bootstrap", the reason (a SASL failure, a closed connection) is in what it logged."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_capturing = 0
_AIOKAFKA = logging.getLogger("aiokafka")


async def start_guarded(start: Callable[[], Awaitable[None]], sec: KafkaSecurity, bootstrap: str,
                        timeout: float = 5.0) -> None:
    """Run a client's ``start`` after :func:`probe`; any failure becomes one :class:`KafkaSecurityError`
    line (the client library's own error lines are held back: they would repeat it, less clearly)."""
    global _capturing
    if sec.uses_sasl:
        _password(sec)  # a missing password file is named as such, not as a failed login
    await probe(sec, bootstrap, timeout)
    handler = _ConnectErrors()
    _AIOKAFKA.addHandler(handler)
    _capturing += 1
    _AIOKAFKA.propagate = False
    try:
        await start()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise KafkaSecurityError(diagnose(exc, sec, bootstrap, handler.messages)) from None
    finally:
        _AIOKAFKA.removeHandler(handler)
        _capturing -= 1
        if _capturing == 0:
            _AIOKAFKA.propagate = True


def diagnose(exc: BaseException, sec: KafkaSecurity, bootstrap: str, logged: list[str] | None = None) -> str:
    """One line for a failed client start: the broker, the mechanism, what went wrong and the fix.

    ``logged``: what the client library logged meanwhile (its exception often hides the reason).
    """
    if isinstance(exc, KafkaSecurityError):
        return str(exc)
    name = type(exc).__name__
    text = " ".join([str(exc), *(logged or [])])
    text = redact(text, [_password_or_none(sec)])
    where = f"kafka: broker {bootstrap} ({sec.mechanism_label()})"
    if "SaslAuthentication" in text or "Authentication failed" in text:
        return (
            f"{where}: authentication failed for user {sec.sasl_username!r} — fix: check kafka.sasl_username and "
            f"the password ({sec.password().source()}), and that kafka.sasl_mechanism matches the user's"
        )
    if "UnsupportedSaslMechanism" in text:
        return f"{where}: the broker does not enable {sec.sasl_mechanism} — fix: set kafka.sasl_mechanism to one it has"
    if "IllegalSaslState" in text:
        return f"{where}: the listener expects SASL — fix: set kafka.security_protocol SASL_SSL with sasl_* keys"
    if sec.uses_tls and not sec.ssl_certfile and any(
        w in text for w in ("closed", "alert bad certificate", "certificate required")  # aiokafka, librdkafka
    ):
        return (
            f"{where}: the broker closed the TLS connection — fix: it probably requires a client certificate: "
            "set kafka.ssl_certfile and kafka.ssl_keyfile (mutual TLS), or use its SASL_SSL port"
        )
    if (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED) or "Unable to bootstrap" in text:
        return f"{where}: no broker answers — fix: check kafka.bootstrap and that the brokers are up"
    return f"{where}: cannot connect ({name}: {text[:300]}) — fix: check kafka.bootstrap and kafka.security_protocol"


def password_file(sec: KafkaSecurity) -> Path | None:
    """The password file, if one is configured (watched for rotation by the callers that reconnect)."""
    return Path(sec.sasl_password_file) if sec.sasl_password_file else None
