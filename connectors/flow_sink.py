"""A Kafka sink for the dataflow that never drops a record silently.

bytewax's KafkaSink flushes without checking delivery reports: a record the broker never
acknowledged (after `message.timeout.ms`) is lost without a word. This sink counts the
delivery reports of each batch and raises if any failed, so the flow stops and, run with
recovery, replays from its last snapshot instead of losing alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Message, Producer


@dataclass(frozen=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class DeliveryFailed(RuntimeError):
    pass


class _Partition(StatelessSinkPartition[OutRecord]):
    def __init__(self, producer: Producer, flush_timeout_s: float) -> None:
        self._producer = producer
        self._flush_timeout_s = flush_timeout_s
        self._errors: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def write_batch(self, items: list[OutRecord]) -> None:
        for record in items:
            while True:
                try:
                    self._producer.produce(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers),
                        on_delivery=self._on_delivery,
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry
                    self._producer.poll(0.1)
            self._producer.poll(0)
        remaining = self._producer.flush(self._flush_timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(
                f"{remaining} record(s) undelivered after {self._flush_timeout_s}s, "
                f"{len(errors)} failed: {errors[:3]}"
            )

    def close(self) -> None:
        self._producer.flush(self._flush_timeout_s)


class ReliableKafkaSink(DynamicSink[OutRecord]):
    """Writes OutRecords to their own topics; raises on any undelivered record."""

    def __init__(
        self, bootstrap: str, config: dict[str, str | int | bool] | None = None,
        flush_timeout_s: float = 120.0,
    ) -> None:
        self._config: dict[str, str | int | bool] = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            # Shorter than the flush timeout, so a failure is reported, not left pending.
            "message.timeout.ms": int(flush_timeout_s * 1000 * 0.9),
            **(config or {}),
        }
        self._flush_timeout_s = flush_timeout_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        config = {**self._config, "client.id": f"alpr-{step_id}-{worker_index}"}
        return _Partition(Producer(config), self._flush_timeout_s)
