"""Topics the flow's runner creates (demo, tests, benchmarks) keep reads and alerts no
longer than the retention policy, like `alpr retention topics` does for a site."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from alpr.launcher import FlowTopics
from safeguards.policy import load_policy
from safeguards.retention import topic_retention_ms


def test_reads_and_alerts_topics_get_the_policy_retention(kafka: str) -> None:
    topics = FlowTopics.unique("retention")
    topics.create(kafka)
    retention = topic_retention_ms(AdminClient({"bootstrap.servers": kafka}),
                              [topics.reads, topics.alerts], 15)
    thirty_days_ms = load_policy().retention_s * 1000
    assert thirty_days_ms == 30 * 24 * 3600 * 1000
    assert retention == {topics.reads: thirty_days_ms, topics.alerts: thirty_days_ms}
