"""devtools.localkafka: a broker is started only on ports nobody else holds, is ready only when the
broker answering is itself, and a start on the same data stops what an earlier start left running."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devtools.brokerguard import alive
from devtools.localkafka import BrokerConflict, LocalKafka, read_cluster_id
from tests.support import free_port

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("java") is None, reason="starts its own broker")]


@pytest.fixture
def session_broker(kafka_broker: LocalKafka | None) -> LocalKafka:
    if kafka_broker is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names a cluster: no local broker to be in the way")
    return kafka_broker


def test_a_start_on_a_port_another_broker_holds_is_refused_with_who_holds_it(session_broker: LocalKafka,
                                                                              tmp_path: Path) -> None:
    other = LocalKafka(tmp_path / "other", session_broker.port, free_port(), heap="256m")
    with pytest.raises(BrokerConflict) as refused:
        other.start(timeout=60)
    message = str(refused.value)
    assert session_broker.process is not None
    assert f"port {session_broker.port} is held by pid {session_broker.process.pid}" in message
    assert f"a Kafka broker with data in {session_broker.data_dir}" in message
    assert f"cannot start Kafka with data in {other.data_dir}" in message
    assert other.process is None  # no JVM was started, so nothing reported ready
    assert read_cluster_id(other.data_dir) is None


def test_readiness_refuses_a_broker_of_another_cluster_on_its_port(session_broker: LocalKafka,
                                                                   tmp_path: Path) -> None:
    """As if the port had been taken between the check and the start: the answer names another cluster."""
    other = LocalKafka(tmp_path / "other", session_broker.port, free_port())
    (other.data_dir / "data").mkdir(parents=True)
    (other.data_dir / "data" / "meta.properties").write_text("node.id=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n")
    with pytest.raises(BrokerConflict, match=rf"127.0.0.1:{session_broker.port} answers for cluster \S+, not for "
                                             r"this broker's AAAAAAAAAAAAAAAAAAAAAA"):
        other.wait_ready(timeout=60)


def test_a_start_stops_the_broker_an_earlier_start_on_its_data_left_running(tmp_path: Path) -> None:
    port, controller = free_port(), free_port()
    # An earlier stack that died without stopping its broker (and without the kernel's help).
    orphan = LocalKafka(tmp_path / "kafka", port, controller, heap="256m", die_with_parent=False).start()
    assert orphan.process is not None
    cluster_id = read_cluster_id(orphan.data_dir)
    again = LocalKafka(tmp_path / "kafka", port, controller, heap="256m")
    try:
        again.start(timeout=90)
        assert not alive(orphan.process.pid)
        assert again.process is not None and alive(again.process.pid)
        assert read_cluster_id(again.data_dir) == cluster_id  # the same data, kept
    finally:
        again.stop()
        orphan.stop()
