"""Choosing how services are provided: environment variables decide, a missing Docker engine is detected."""

from __future__ import annotations

import pytest

from logpipe.dev.services import DevServiceError, open_backend
from logpipe.dev.services.backend import ExternalServices, choose_mode, docker_engine_answers, service_name
from logpipe.dev.services.manager import ServiceManager


def test_local_mode_gives_the_process_manager() -> None:
    assert isinstance(open_backend({"LOGPIPE_SERVICES": "local"}), ServiceManager)


def test_endpoint_variables_make_those_services_external_and_uncontrolled() -> None:
    backend = open_backend({"LOGPIPE_SERVICES": "local", "LOGPIPE_ES_URL": "http://10.0.0.5:9200"})
    assert isinstance(backend, ExternalServices)
    assert not backend.controls("elasticsearch")
    assert backend.controls("kafka")
    with pytest.raises(DevServiceError, match="LOGPIPE_ES_URL"):
        backend.stop("elasticsearch")


def test_external_mode_without_a_variable_says_which_to_set() -> None:
    backend = open_backend({"LOGPIPE_SERVICES": "external", "LOGPIPE_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    with pytest.raises(DevServiceError, match="LOGPIPE_ALERTMANAGER_URL is not set"):
        backend.ensure("alertmanager")


def test_an_unknown_mode_or_service_is_an_error_naming_the_choices() -> None:
    with pytest.raises(DevServiceError, match="local, testcontainers"):
        choose_mode({"LOGPIPE_SERVICES": "k8s"})
    with pytest.raises(DevServiceError, match="kafka, elasticsearch, alertmanager"):
        service_name("zookeeper")


def test_testcontainers_mode_needs_an_engine_that_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert not docker_engine_answers(timeout=0.5)
    assert choose_mode({"LOGPIPE_SERVICES": "auto"}) == "local"
    with pytest.raises(DevServiceError, match="no Docker engine answers"):
        choose_mode({"LOGPIPE_SERVICES": "testcontainers"})
