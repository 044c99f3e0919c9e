"""The only door to kafka-python: every other module of the project imports Kafka from here.

clients       clients made from settings (address and security in one place), ``publish``
cluster       the cluster's id and live brokers, partition leaders, group and transaction coordinators
records       ``Record`` (as read) and ``Output`` (to write), apart from the client library
errors        the error classes the services catch, ``fenced``, ``describe``
access        the start-up check: ``access_at_start``, ``check_access`` (wrong credentials fail fast)
backoff       the one backoff every retry loop uses
provision     ``ensure_topics``
reading       bounded reads: ``read_range``, ``read_topic``, end offsets, a group's lag
catchup       a replica's state file brought up to date: ``bind_to_topics``, ``committed_offsets``, ``catch_up``
follow        ``Follower``: topics followed on a thread, without a consumer group
assigned      ``AssignedReader``: every partition of some topics, in batches, from offsets kept elsewhere
batch         what the stage loop hands a processor; ``parse``
deadletters   ``<topic>.dlq``: the headers, ``dead_letter``, listing and ``replay``
writers       ``BatchWriter`` (outputs + offsets, one transaction) and ``AckedWriter``
publisher     ``RecordPublisher``: request threads writing one record at a time, each acknowledged; readiness
workarounds   the one module that reads kafka-python's insides: stuck producers, bounded transactional calls
stage         ``Stage``: the consume-process-produce loop of every consumer service
peek          offsets and newest records of topics, for people
probe         end offsets for read-your-writes waits, one round trip per burst (``EndOffsets``)
"""

from orderflow.kafka.access import KafkaAccessDenied, access_at_start, check_access
from orderflow.kafka.assigned import AssignedReader
from orderflow.kafka.backoff import Backoff
from orderflow.kafka.batch import Inbound, Processor, parse, parse_value
from orderflow.kafka.catchup import bind_to_topics, catch_up, committed_offsets
from orderflow.kafka.clients import (
    OffsetAndMetadata,
    TopicPartition,
    client_config,
    make_admin,
    make_consumer,
    make_producer,
    offsets,
    partition_for,
    publish,
)
from orderflow.kafka.cluster import ClusterInfo, describe_cluster, find_coordinator, partition_leaders
from orderflow.kafka.deadletters import DeadLetter, dead_letter, dead_letters, replay
from orderflow.kafka.errors import BrokerUnavailable, KafkaError, describe, fenced
from orderflow.kafka.follow import Follower, TopicsMissing
from orderflow.kafka.peek import TopicPeek, peek_topics
from orderflow.kafka.probe import EndOffsets, SharedProbe
from orderflow.kafka.provision import ensure_topics
from orderflow.kafka.publisher import KafkaDown, RecordPublisher
from orderflow.kafka.reading import end_offsets, group_lag, read_range, read_topic
from orderflow.kafka.records import Output, Record, text_key
from orderflow.kafka.stage import Stage
from orderflow.kafka.writers import AckedWriter, BatchWriter

__all__ = [
    "AckedWriter", "AssignedReader", "Backoff", "BatchWriter", "BrokerUnavailable", "ClusterInfo", "DeadLetter",
    "EndOffsets", "Follower", "Inbound", "KafkaAccessDenied", "KafkaDown", "KafkaError", "OffsetAndMetadata",
    "Output", "Processor", "Record", "RecordPublisher", "SharedProbe", "Stage", "TopicPartition", "TopicPeek",
    "TopicsMissing", "access_at_start", "bind_to_topics", "catch_up", "check_access", "client_config",
    "committed_offsets", "dead_letter", "dead_letters", "describe", "describe_cluster", "end_offsets",
    "ensure_topics", "fenced", "find_coordinator", "group_lag", "make_admin", "make_consumer", "make_producer",
    "offsets", "parse", "parse_value", "partition_for", "partition_leaders", "peek_topics", "publish", "read_range",
    "read_topic", "replay", "text_key",
]
