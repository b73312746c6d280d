"""Errors of the dev services, each saying what went wrong and what to do about it."""

from __future__ import annotations


class DevServiceError(Exception):
    """A dev service could not be provisioned, started, stopped or reached."""


class JavaNotFoundError(DevServiceError):
    """No Java runtime of the version a service needs."""


class MavenError(DevServiceError):
    """``mvn`` failed while fetching a distribution; the message holds its last lines."""


class PortTakenError(DevServiceError):
    """A port a service needs is already used by a process we did not start."""


class ServiceStartError(DevServiceError):
    """A service was started but did not become healthy; the message holds its log's last lines."""


class UnknownServiceError(DevServiceError):
    """A service name that is not one of kafka, elasticsearch, alertmanager."""
