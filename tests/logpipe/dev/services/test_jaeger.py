"""The Jaeger dev service: its config points Jaeger's storage at our indices; it starts after
Elasticsearch; ``logpipe dev status`` lists it (the real Jaeger answering: tests/integration)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from logpipe.cli.main import app
from logpipe.dev.services.jaeger import JaegerService, jaeger_config
from logpipe.dev.services.manager import ServiceManager, default_services
from logpipe.dev.services.paths import DevPaths


def test_config_reads_our_prefix_creates_nothing_and_listens_on_loopback() -> None:
    cfg = yaml.safe_load(jaeger_config("http://127.0.0.1:9200", "logpipe", 16686, 16685))
    es = cfg["extensions"]["jaeger_storage"]["backends"]["logpipe_es"]["elasticsearch"]
    assert es["server_urls"] == ["http://127.0.0.1:9200"]
    assert es["indices"]["index_prefix"] == "logpipe"
    assert es["indices"]["spans"]["date_layout"] == "2006-01-02"  # YYYY-MM-DD, as the consumer names them
    assert es["create_mappings"] is False and es["use_ilm"] is False and es["use_aliases"] is False
    assert es["version"] == 8 and es["disable_health_check"] is True  # the integ-test zip answers GET / with 405
    query = cfg["extensions"]["jaeger_query"]
    assert query["http"]["endpoint"] == "127.0.0.1:16686" and query["grpc"]["endpoint"] == "127.0.0.1:16685"
    assert cfg["service"]["pipelines"]["traces"] == {"receivers": ["nop"], "exporters": ["nop"]}


def test_ports_follow_the_offset_and_elasticsearch_comes_first(tmp_path: Path) -> None:
    paths = DevPaths(cache=tmp_path / "cache", state=tmp_path / "state")
    services = {s.name: s for s in default_services(paths, lambda _: None, offset=1000)}
    jaeger = services["jaeger"]
    assert isinstance(jaeger, JaegerService)
    assert jaeger.ports == [17686, 17685] and jaeger.es_url == "http://127.0.0.1:10200"
    manager = ServiceManager(paths, services.values())
    ordered = manager._with_requirements([jaeger])
    assert [s.name for s in ordered] == ["jaeger", "elasticsearch"]  # up() starts ES's wave first


def test_status_lists_jaeger(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOGPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LOGPIPE_DEV_PORT_OFFSET", "31000")  # nothing runs there
    status = CliRunner().invoke(app, ["dev", "status"])
    assert "jaeger         stopped   http://127.0.0.1:47686" in status.stdout
