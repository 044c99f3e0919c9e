"""The Docker files, checked without a Docker engine.

The compose files against the Compose Specification schema (as vendored by check-jsonschema), then
what the schema cannot see: the services reach the broker's internal listener and Mailpit by their
names on the shared network, their environment is what their settings classes read, published host
ports do not clash, and every container runs a module that the image installs.
"""

from __future__ import annotations

import base64
import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from pydantic_settings import BaseSettings

from devtools.localkafka import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[2]
KAFKA_FILE = ROOT / "docker-compose-kafka.yml"
CLUSTER_FILE = ROOT / "docker-compose-kafka-cluster.yml"  # the three-node alternative to KAFKA_FILE
SERVICES_FILE = ROOT / "docker-compose-services.yml"
MAILPIT_SMTP_PORT = 1025  # Mailpit's default SMTP port
# Where each service's settings class lives, by the module its container runs.
SETTINGS = {
    "orders_backend": "orders_backend.settings:Settings",
    "transactions_backend": "transactions_backend.main:Settings",
    "email_backend": "email_backend.main:Settings",
    "analytics_backend": "analytics_backend.main:Settings",
    "dashboard": "dashboard.settings:Settings",
    "order_projector": "order_projector.main:Settings",
}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path.name} is not a mapping"
    return doc


KAFKA = load(KAFKA_FILE)
CLUSTER = load(CLUSTER_FILE)
SERVICES = load(SERVICES_FILE)
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The packages `pip install .` puts in the image.
PACKAGES = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}


def by_image(prefix: str) -> tuple[str, dict[str, Any]]:
    found = [(name, s) for name, s in KAFKA["services"].items() if s.get("image", "").startswith(prefix)]
    assert len(found) == 1, f"expected one service with image {prefix}* in {KAFKA_FILE.name}"
    return found[0]


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}."""
    out = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def published(service: dict[str, Any]) -> list[tuple[int, int, str]]:
    """(host port, container port, protocol) of each published port, short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            if port.get("published") is not None:
                out.append((int(port["published"]), int(port["target"]), port.get("protocol", "tcp")))
            continue
        spec, _, protocol = str(port).partition("/")
        parts = spec.split(":")
        if len(parts) > 1:  # a bare container port gets a random host port
            out.append((int(parts[-2]), int(parts[-1]), protocol or "tcp"))
    return out


def module_of(service: dict[str, Any]) -> str:
    command = service.get("command")
    assert isinstance(command, list) and command[:2] == ["python", "-m"] and len(command) == 3, command
    return str(command[2])


def settings_class(module: str) -> type[BaseSettings]:
    assert module in SETTINGS, f"add the settings class of {module} to SETTINGS"
    path, _, name = SETTINGS[module].partition(":")
    cls = getattr(importlib.import_module(path), name)
    assert issubclass(cls, BaseSettings)
    return cls  # type: ignore[no-any-return]


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The variables a settings class reads; a nested settings field reads under its own prefix."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            names |= env_names(field.annotation)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


KAFKA_NAME, KAFKA_SERVICE = by_image("apache/kafka:")
KAFKA_ENV = KAFKA_SERVICE["environment"]
MAIL_NAME, MAIL_SERVICE = by_image("axllent/mailpit")
UI_NAME, UI_SERVICE = by_image("ghcr.io/kafbat/kafka-ui")
INTERNAL = listeners(KAFKA_ENV["KAFKA_ADVERTISED_LISTENERS"])[KAFKA_ENV["KAFKA_INTER_BROKER_LISTENER_NAME"]]
NETWORK = next(iter(KAFKA["networks"]))


@pytest.mark.parametrize("path", [KAFKA_FILE, CLUSTER_FILE, SERVICES_FILE], ids=lambda p: p.name)
def test_follows_the_compose_specification(path: Path) -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(load(path))]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", [KAFKA_FILE, CLUSTER_FILE, SERVICES_FILE], ids=lambda p: p.name)
def test_references_resolve_within_the_file(path: Path) -> None:
    doc = load(path)
    for name, service in doc["services"].items():
        assert set(service.get("depends_on", {})) <= set(doc["services"]), f"{name}: depends_on another file"
        assert set(service.get("networks", [])) <= set(doc.get("networks", {})), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            assert source.startswith((".", "/")) or source in doc.get("volumes", {}), f"{name}: {volume}"
    # Compose reads $NAME and ${NAME} as variables: a literal dollar must be written $$.
    text = re.sub(r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}", "", path.read_text(encoding="utf-8"))
    assert "$" not in text, "escape literal $ as $$ in compose files"


def test_kafka_is_one_kraft_node_with_internal_external_and_controller_listeners() -> None:
    bound = listeners(KAFKA_ENV["KAFKA_LISTENERS"])
    advertised = listeners(KAFKA_ENV["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in KAFKA_ENV["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = KAFKA_ENV["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(KAFKA_ENV["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert set(bound) <= set(protocols) and controller in bound and controller not in advertised
    assert set(advertised) <= set(bound)
    assert all(advertised[name][1] == bound[name][1] for name in advertised), "advertised port != bound port"
    # The inter-broker listener is the one containers use: its host is this service's name.
    assert INTERNAL[0] in {KAFKA_NAME, KAFKA_SERVICE.get("hostname")}
    node, _, voter = KAFKA_ENV["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == KAFKA_ENV["KAFKA_NODE_ID"]
    assert voter == f"{KAFKA_NAME}:{bound[controller][1]}"
    # A listener advertised as localhost is for the host, so it must be published on the same port.
    for host, port in advertised.values():
        if host == "localhost":
            assert (port, port, "tcp") in published(KAFKA_SERVICE), f"localhost:{port} is not published"
    assert len(base64.urlsafe_b64decode(KAFKA_ENV["CLUSTER_ID"] + "==")) == 16


def test_kafka_settings_fit_one_node() -> None:
    for key in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
        assert str(KAFKA_ENV[f"KAFKA_{key}"]) == "1", key
    assert str(KAFKA_ENV["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    assert str(KAFKA_ENV["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"]) == "0"
    data = [v.split(":") for v in KAFKA_SERVICE["volumes"] if v.endswith(f":{KAFKA_ENV['KAFKA_LOG_DIRS']}")]
    assert data and data[0][0] in KAFKA["volumes"], "the log dirs must be a named volume"
    assert "healthcheck" in KAFKA_SERVICE
    # The same broker version as `make run` and the tests fetch.
    assert KAFKA_SERVICE["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_kafka_ui_reads_the_internal_listener_once_kafka_is_healthy() -> None:
    assert UI_SERVICE["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == f"{INTERNAL[0]}:{INTERNAL[1]}"
    assert UI_SERVICE["depends_on"][KAFKA_NAME]["condition"] == "service_healthy"


def test_the_services_join_the_kafka_files_network() -> None:
    ours, theirs = KAFKA["networks"][NETWORK], next(iter(SERVICES["networks"].values()))
    assert len(SERVICES["networks"]) == 1 and theirs["external"] is True
    assert ours["name"] == theirs["name"], "the services file must join the network by its fixed name"
    for doc in (KAFKA, SERVICES):
        for name, service in doc["services"].items():
            assert service.get("networks") == list(doc["networks"]), f"{name} is not on the shared network"


def test_published_host_ports_do_not_clash() -> None:
    owners: dict[tuple[int, str], str] = {}
    for doc in (KAFKA, SERVICES):
        for name, service in doc["services"].items():
            for host_port, _, protocol in published(service):
                clash = owners.setdefault((host_port, protocol), name)
                assert clash == name, f"{name} and {clash} both publish {host_port}/{protocol}"


def test_what_asks_for_no_password_is_published_on_the_host_only() -> None:
    """Kafka, Kafka-UI, Mailpit and the dashboard (customers' data) have no authentication."""
    open_ones = [*KAFKA["services"].items(), ("dashboard", SERVICES["services"]["dashboard"])]
    for name, service in open_ones:
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).rsplit(":", 2)[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond this machine"


def test_every_procfile_service_runs_from_the_image() -> None:
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8")
    expected = set(re.findall(r"python -m (\w+)\s*$", procfile, re.MULTILINE))  # not devtools.devsmtp
    modules = {}
    for name, service in SERVICES["services"].items():
        assert service.get("build") == ".", f"{name} must build the repo's Dockerfile"
        modules[module_of(service)] = name
        assert (ROOT / module_of(service) / "__main__.py").is_file(), f"{name}: no {module_of(service)}/__main__.py"
        assert module_of(service) in PACKAGES, f"{name}: pip install . leaves out {module_of(service)}"
    assert set(modules) == expected


@pytest.mark.parametrize("name", sorted(SERVICES["services"]))
def test_service_environment_is_what_its_settings_read(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = SERVICES["services"][name]
    env = {key: str(value) for key, value in service["environment"].items()}
    cls = settings_class(module_of(service))
    assert set(env) <= env_names(cls), f"{name}: variables no setting reads"
    for key in env_names(cls):  # only the compose file's environment, not the caller's
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings: Any = cls()
    host, _, port = settings.kafka.bootstrap_servers.partition(":")
    assert (host, int(port)) == INTERNAL, f"{name} must use the broker's internal listener"
    health = " ".join(service["healthcheck"]["test"])
    if "port" in cls.model_fields:  # a web service: published, and its healthcheck asks it
        assert (settings.port, settings.port, "tcp") in published(service)
        assert settings.host == "0.0.0.0", f"{name} must listen beyond the container's own loopback"
        assert f"127.0.0.1:{settings.port}/healthz" in health
    else:  # a consumer: its healthcheck reads the health file the loop touches
        assert settings.health_file and f"'{settings.health_file}'" in health
    if "smtp_host" in cls.model_fields:
        assert settings.smtp_host == MAIL_NAME and settings.smtp_port == MAILPIT_SMTP_PORT
        assert (MAILPIT_SMTP_PORT, MAILPIT_SMTP_PORT, "tcp") in published(MAIL_SERVICE)
    assert service["restart"] == "unless-stopped"


def test_dockerfile_runs_a_service_as_a_non_root_user() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert lines[[line.startswith("FROM") for line in lines].index(True)] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert 'CMD ["python", "-m", "orders_backend"]' in lines
    installs = [line for line in lines if "pip install" in line]
    assert installs and not any("[dev]" in line for line in installs), "the image takes no dev dependencies"
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    runtime = PACKAGES - {"devtools"}
    assert "pyproject.toml" not in ignored and not runtime & set(ignored) and ".venv" in ignored
    assert "devtools" in ignored, "the dev tools stay out of the image"


def test_the_image_installs_no_dev_tool_dependencies() -> None:
    """The image installs ``project.dependencies`` only; the SMTP catcher and Procfile runner are extras."""
    runtime = {re.split(r"[<>=\[ ]", dep, maxsplit=1)[0].lower() for dep in PYPROJECT["project"]["dependencies"]}
    assert not runtime & {"honcho", "aiosmtpd"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {re.split(r"[<>=]", d, maxsplit=1)[0] for d in extras["devtools"]} == {"honcho", "aiosmtpd"}


def test_the_containers_order_store_is_the_postgres_service() -> None:
    from sqlalchemy import make_url

    name, postgres = by_image("postgres:")
    env = postgres["environment"]
    url = make_url(SERVICES["services"]["order_projector"]["environment"]["STORE_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"  # the driver pyproject.toml installs
    assert (url.host, url.port, url.username, url.password, url.database) == \
        (name, 5432, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])
    # The dashboard reads the store the projector writes.
    assert SERVICES["services"]["dashboard"]["environment"]["STORE_DATABASE_URL"] == url.render_as_string(False)
    data = [v.split(":") for v in postgres["volumes"] if v.endswith(":/var/lib/postgresql/data")]
    assert data and data[0][0] in KAFKA["volumes"], "the database must be a named volume"
    assert "healthcheck" in postgres and not postgres.get("ports"), "no password worth the name: not published"


CLUSTER_NODES = {name: s for name, s in CLUSTER["services"].items() if s.get("image", "").startswith("apache/kafka:")}


def test_the_cluster_file_is_three_kraft_nodes_of_one_cluster_and_one_quorum() -> None:
    assert len(CLUSTER_NODES) == 3
    envs = {name: node["environment"] for name, node in CLUSTER_NODES.items()}
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1
    assert len(base64.urlsafe_b64decode(next(iter(envs.values()))["CLUSTER_ID"] + "==")) == 16
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs.values()}
    assert len(voters) == 1, "every node must name the same quorum"
    expected = set()
    for name, env in envs.items():
        bound = listeners(env["KAFKA_LISTENERS"])
        advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert all(advertised[n][1] == bound[n][1] for n in advertised), f"{name}: advertised port != bound port"
        assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]][0] in {name, CLUSTER_NODES[name].get("hostname")}
        assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] not in advertised
        expected.add(f"{env['KAFKA_NODE_ID']}@{name}:{bound[env['KAFKA_CONTROLLER_LISTENER_NAMES']][1]}")
        for host, port in advertised.values():
            if host == "localhost":
                assert published(CLUSTER_NODES[name]) == [(port, port, "tcp")], f"{name}: localhost:{port}"
        assert CLUSTER_NODES[name]["image"] == f"apache/kafka:{KAFKA_VERSION}"
        assert "healthcheck" in CLUSTER_NODES[name]
    assert set(voters.pop().split(",")) == expected
    assert len({env["KAFKA_NODE_ID"] for env in envs.values()}) == 3


def test_the_cluster_keeps_three_copies_and_a_write_needs_two() -> None:
    for name, node in CLUSTER_NODES.items():
        env = node["environment"]
        for key in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "DEFAULT_REPLICATION_FACTOR"):
            assert str(env[f"KAFKA_{key}"]) == "3", (name, key)
        for key in ("TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "MIN_INSYNC_REPLICAS"):
            assert str(env[f"KAFKA_{key}"]) == "2", (name, key)
        assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    volumes = [v.split(":")[0] for node in CLUSTER_NODES.values() for v in node["volumes"]]
    assert len(set(volumes)) == 3 and set(volumes) <= set(CLUSTER["volumes"]), "one named volume per node"


def test_the_services_reach_the_cluster_by_the_name_every_node_answers_to() -> None:
    """docker-compose-services.yml bootstraps from kafka:19092: each node carries that name on the network."""
    assert CLUSTER["networks"][NETWORK]["name"] == KAFKA["networks"][NETWORK]["name"]
    for name, node in CLUSTER_NODES.items():
        env = node["environment"]
        assert node["networks"][NETWORK]["aliases"] == [INTERNAL[0]], name
        assert listeners(env["KAFKA_LISTENERS"])[env["KAFKA_INTER_BROKER_LISTENER_NAME"]][1] == INTERNAL[1]
    ui = CLUSTER["services"][UI_NAME]
    internal = {f"{n}:{INTERNAL[1]}" for n in CLUSTER_NODES}
    assert set(ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"].split(",")) == internal
    assert {n: c["condition"] for n, c in ui["depends_on"].items()} == dict.fromkeys(CLUSTER_NODES, "service_healthy")


def test_the_cluster_file_publishes_on_the_host_only_and_clashes_with_no_service() -> None:
    owners: dict[tuple[int, str], str] = {}
    for doc in (CLUSTER, SERVICES):
        for name, service in doc["services"].items():
            for host_port, _, protocol in published(service):
                assert owners.setdefault((host_port, protocol), name) == name, f"{name} clashes on {host_port}"
    for name, service in CLUSTER["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
