"""Provisioning errors say what is missing, and the generated configs keep services on loopback."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from logpipe.dev.services.elasticsearch import ElasticsearchService
from logpipe.dev.services.errors import JavaNotFoundError, MavenError
from logpipe.dev.services.java import find_java, java_major
from logpipe.dev.services.kafka import KafkaService
from logpipe.dev.services.maven import Artifact, copy_dependencies
from logpipe.dev.services.paths import DevPaths


def fake_jdk(root: Path, version: str) -> Path:
    home = root / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


def test_java_version_comes_from_the_release_file(tmp_path: Path) -> None:
    assert java_major(fake_jdk(tmp_path, "17.0.15")) == 17
    assert java_major(fake_jdk(tmp_path, "1.8.0_392")) == 8
    assert java_major(tmp_path / "nothing") is None


def test_no_java_new_enough_names_the_need_and_what_was_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_jdk(tmp_path, "17.0.1")
    monkeypatch.setattr("logpipe.dev.services.java.JVM_ROOT", tmp_path / "none")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("ES_JAVA_HOME", str(old))
    with pytest.raises(JavaNotFoundError) as err:
        find_java(21, service="Elasticsearch", env_vars=("ES_JAVA_HOME",))
    assert "Elasticsearch needs Java 21 or newer" in str(err.value)
    assert f"{old} (Java 17)" in str(err.value)
    assert "ES_JAVA_HOME" in str(err.value)
    new = fake_jdk(tmp_path, "25.0.1")
    monkeypatch.setenv("ES_JAVA_HOME", str(new))
    assert find_java(21, service="Elasticsearch", env_vars=("ES_JAVA_HOME",)).home == new


def test_a_failing_mvn_shows_its_last_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(
        "#!/bin/sh\nfor i in $(seq 1 40); do echo \"line $i\"; done\necho 'Could not resolve x' >&2\nexit 1\n"
    )
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(MavenError) as err:
        copy_dependencies([Artifact("g", "a", "1")], tmp_path / "out", tmp_path / "work")
    text = str(err.value)
    assert "mvn failed (exit 1) fetching g:a:1:jar" in text
    assert "Could not resolve x" in text and "line 40" in text
    assert "line 10\n" not in text  # only the tail


def test_missing_mvn_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MavenError, match="install Maven"):
        copy_dependencies([Artifact("g", "a", "1")], tmp_path / "out", tmp_path / "work")


def test_kafka_listens_only_on_loopback_with_single_node_replication(tmp_path: Path) -> None:
    kafka = KafkaService(DevPaths(tmp_path / "c", tmp_path / "s"), port=10092, controller_port=20093)
    props = dict(line.split("=", 1) for line in kafka.server_properties().splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:10092,CONTROLLER://127.0.0.1:20093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:10092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:20093"
    assert props["process.roles"] == "broker,controller"
    replication = {k: v for k, v in props.items() if k.endswith(("replication.factor", "min.isr"))}
    assert replication and set(replication.values()) == {"1"}
    assert kafka.ports == [10092, 20093]


def test_elasticsearch_is_single_node_on_loopback_without_disk_watermarks(tmp_path: Path) -> None:
    es = ElasticsearchService(DevPaths(tmp_path / "c", tmp_path / "s"), port=10200, transport_port=10300)
    yml = dict(line.split(": ", 1) for line in es.elasticsearch_yml().splitlines())
    assert yml["network.host"] == "127.0.0.1"
    assert (yml["http.port"], yml["transport.port"]) == ("10200", "10300")
    assert yml["discovery.type"] == "single-node"
    assert yml["cluster.routing.allocation.disk.threshold_enabled"] == "false"
    assert yml["path.data"].startswith(str(tmp_path / "s" / "elasticsearch"))
