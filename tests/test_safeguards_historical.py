"""Rule 7: a hotlist entry added now is checked against the retained reads.

The updates come from the real producer (hotlists.import_run.Importer and its events) into
a real hotlist store; matching is the real-time matcher's, so a past read raises the
alert it would have raised had the entry been listed when the read was made.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from safeguard_builders import make_alert, make_entry, make_read

from connectors.kafka import KafkaRecord, delete_topics, ensure_topics, read_all
from flows.hotlist_join import join_reads
from hotlists.events import KafkaUpdatePublisher, MemoryUpdatePublisher
from hotlists.import_run import INLINE_ADDED_LIMIT, Importer
from hotlists.store import HotlistStore
from kernel.contracts import Alert, HotlistEntry, HotlistSource, PlateRead, alert_id
from kernel.settings import Topics
from safeguards.alerts import AlertStore
from safeguards.historical import AddedEntries, historical_alerts, parse_hotlist_update
from safeguards.ingest import handle_hotlist_updates, run_hotlist_updates
from safeguards.policy import DAY_S, Policy, load_policy
from safeguards.retention import ReadStore, now_ms
from sim.local_services import LocalRedis

CSV_HEADER = "PlateNumber,PlateState,Category"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedis]:
    """Overrides conftest's: no audit here, so no AOF (conftest's `client` uses this)."""
    with LocalRedis() as srv:
        yield srv


@pytest.fixture
def reads(client: redis.Redis) -> ReadStore:
    store = ReadStore(client)
    now = now_ms()
    store.put_many([
        make_read("HIS123", camera="cam-1", at_ms=now - 5 * DAY_S * 1000),
        make_read("HIS123", camera="cam-2", at_ms=now - 3_600_000),
        make_read("HIS123", camera="cam-3", at_ms=now - 60_000, alertable=False),
        make_read("OTH456", camera="cam-1", at_ms=now - 60_000),
    ])
    return store


@pytest.fixture
def alerts(client: redis.Redis) -> AlertStore:
    return AlertStore(client)


@pytest.fixture
def hotlists(client: redis.Redis) -> HotlistStore:
    return HotlistStore(client)


@pytest.fixture
def events() -> MemoryUpdatePublisher:
    return MemoryUpdatePublisher()


@pytest.fixture
def importer(hotlists: HotlistStore, events: MemoryUpdatePublisher) -> Importer:
    return Importer(hotlists, publisher=events)


def records(events: MemoryUpdatePublisher, topic: str = "alpr.hotlist-updates"
            ) -> list[KafkaRecord]:
    """The published events as the consumer receives them."""
    return [KafkaRecord(topic=topic, partition=0, offset=i, key=e.source.value.encode(),
                        value=e.to_json_bytes()) for i, e in enumerate(events.events)]


def amber(plate: str, alert: str = "AMB-1", state: str = "CO") -> str:
    return json.dumps({"alert_id": alert, "plate": plate, "state": state,
                       "vehicle": "red sedan"})


def csv_rows(*rows: str) -> list[str]:
    return [CSV_HEADER, *rows]


def with_state(read: PlateRead, state: str) -> PlateRead:
    return read.model_copy(update={"state": state})


# --- what an update finds --------------------------------------------------------------


def test_added_entry_finds_past_reads(reads: ReadStore, alerts: AlertStore,
                                      hotlists: HotlistStore, importer: Importer,
                                      events: MemoryUpdatePublisher) -> None:
    importer.import_lines("ncmec", [amber("HIS123")])
    found = handle_hotlist_updates(records(events), reads=reads, alerts=alerts,
                                   hotlists=hotlists)
    assert sorted(a.read.camera_id for a in found) == ["cam-1", "cam-2"]  # alertable only
    (entry,) = hotlists.lookup("HIS123")
    for alert in found:
        assert alert.historical is True
        assert alert.alert_id == alert_id(alert.read, entry)  # same id as real time
        assert alert.entry == entry and alert.match.read_plate == "HIS123"
        assert alerts.get(alert.alert_id) == alert  # stored: counted on the portal
    assert alerts.count(0, now_ms(), historical_only=True) == 2


def test_past_misreads_match_as_they_would_have_in_real_time(
    client: redis.Redis, hotlists: HotlistStore, importer: Importer,
    events: MemoryUpdatePublisher,
) -> None:
    store = ReadStore(client)
    now = now_ms()
    past = [
        make_read("KID123", camera="cam-1", at_ms=now - DAY_S * 1000),  # exact
        make_read("K1D123", camera="cam-2", at_ms=now - 7_200_000),  # 1 read as I
        make_read("KID12", camera="cam-3", at_ms=now - 3_600_000),  # last character lost
        make_read("KXY123", camera="cam-4", at_ms=now - 600_000),  # two differences
        with_state(make_read("KID123", camera="cam-5", at_ms=now - 60_000), "WY"),
    ]
    store.put_many(past)
    importer.import_lines("ncmec", [amber("KID123")])  # Amber: priority 1, state CO
    found = {a.read.camera_id: a for a in handle_hotlist_updates(
        records(events), reads=store, alerts=AlertStore(client), hotlists=hotlists)}
    assert sorted(found) == ["cam-1", "cam-2", "cam-3"]
    # Exactly what the real-time join says about the same reads now.
    live = {a.read.camera_id: a for a in join_reads(hotlists, past)}
    assert sorted(live) == sorted(found)
    for cam, alert in found.items():
        assert (alert.alert_id, alert.match) == (live[cam].alert_id, live[cam].match)
    assert [found[c].match.method for c in ("cam-1", "cam-2", "cam-3")] == [
        "exact", "ocr_equivalent", "fuzzy"]


def test_same_update_twice_gives_no_duplicates(reads: ReadStore, alerts: AlertStore,
                                               hotlists: HotlistStore, importer: Importer,
                                               events: MemoryUpdatePublisher) -> None:
    importer.import_lines("ncmec", [amber("HIS123")])
    (record,) = records(events)
    assert len(handle_hotlist_updates([record, record], reads=reads, alerts=alerts,
                                      hotlists=hotlists)) == 2
    assert handle_hotlist_updates([record], reads=reads, alerts=alerts,
                                  hotlists=hotlists) == []
    # The same alert re-sent by NCMEC (an upsert of the same entry) is no new hit either.
    importer.import_lines("ncmec", [amber("HIS123")])
    assert handle_hotlist_updates(records(events)[1:], reads=reads, alerts=alerts,
                                  hotlists=hotlists) == []
    # A different entry for the same plate is a different hit.
    importer.import_lines("ncmec", [amber("HIS123", alert="AMB-2")])
    assert len(handle_hotlist_updates(records(events)[2:], reads=reads, alerts=alerts,
                                      hotlists=hotlists)) == 2
    assert alerts.count(0, now_ms(), historical_only=True) == 4


def test_markers_alone_prevent_duplicates(reads: ReadStore, hotlists: HotlistStore) -> None:
    """Without an alert store to consult, the produced-markers still stop repeats."""
    entry = make_entry("HIS123", "NCIC-1")
    hotlists.replace_source(HotlistSource.NCIC, [entry])
    assert len(historical_alerts(reads, hotlists, [entry])) == 2
    assert historical_alerts(reads, hotlists, [entry]) == []


def test_alert_already_raised_in_real_time_is_not_repeated(
    reads: ReadStore, alerts: AlertStore, hotlists: HotlistStore
) -> None:
    entry = make_entry("HIS123", "NCIC-1")
    hotlists.replace_source(HotlistSource.NCIC, [entry])
    recent = next(r for r in reads.reads_for_plate("HIS123") if r.alertable)
    alerts.put(make_alert(recent, entry))
    found = historical_alerts(reads, hotlists, [entry], alert_store=alerts)
    assert len(found) == 1 and found[0].read.read_id != recent.read_id


def test_only_the_entries_the_update_added(reads: ReadStore, alerts: AlertStore,
                                           hotlists: HotlistStore, importer: Importer,
                                           events: MemoryUpdatePublisher) -> None:
    importer.import_lines("csv", csv_rows("OTH456,,Wanted felony suspect"))
    events.events.clear()  # that import was handled long ago
    importer.import_lines("csv", csv_rows("OTH456,,Wanted felony suspect",
                                          "HIS123,,Stolen vehicle"))
    found = handle_hotlist_updates(records(events), reads=reads, alerts=alerts,
                                   hotlists=hotlists)
    assert {a.read.plate for a in found} == {"HIS123"}


def test_expired_and_prohibited_entries_produce_nothing(
    reads: ReadStore, hotlists: HotlistStore
) -> None:
    now = now_ms()
    # Listed while live, expired by the time the update is handled.
    expired = make_entry("HIS123", "NCIC-2", expires_at=now - 1)
    hotlists.replace_source(HotlistSource.NCIC, [expired], now_ms=now - 60_000)
    # The store refuses immigration records itself; the policy screen catches other
    # prohibited purposes (a traffic fine list is not a reason to trace a car).
    traffic = make_entry("HIS123", "L-3", source=HotlistSource.LOCAL,
                         reason="Unpaid parking tickets")
    hotlists.replace_source(HotlistSource.LOCAL, [traffic])
    assert historical_alerts(reads, hotlists, [expired, traffic], policy=load_policy()) == []
    # Without the screen the traffic entry would have matched: the screen is what stops it.
    assert len(historical_alerts(reads, hotlists, [traffic], mark=False)) == 2


def test_a_policy_source_is_asked_again_for_each_batch(
    reads: ReadStore, alerts: AlertStore, hotlists: HotlistStore
) -> None:
    # `alpr retention hotlist-updates` passes the site's policy source: a prohibited
    # purpose added while it runs stops the next batch's historical alerts.
    first = make_entry("HIS123", "L-4", source=HotlistSource.LOCAL, reason="Repossession order")
    second = first.model_copy(update={"entry_id": "L-5"})
    hotlists.replace_source(HotlistSource.LOCAL, [first, second])
    in_force = [load_policy()]
    asked: list[int] = []

    def policy_source() -> Policy:
        asked.append(1)
        return in_force[0]

    def batch(entry: HotlistEntry) -> list[Alert]:
        event = {"source": "LOCAL", "added": [entry.model_dump(mode="json")]}
        record = KafkaRecord(topic="alpr.hotlist-updates", partition=0, offset=0, key=None,
                             value=json.dumps(event).encode())
        return handle_hotlist_updates([record], reads=reads, alerts=alerts,
                                      hotlists=hotlists, policy=policy_source)

    assert len(batch(first)) == 2
    in_force[0] = load_policy(prohibited_purposes={
        **load_policy().prohibited_purposes,
        "repossession": {"label": "Vehicle repossession", "keywords": ["repossession"]}})
    assert batch(second) == []
    assert len(asked) == 2


def test_vehicle_colour_is_not_screened_as_a_purpose(
    reads: ReadStore, hotlists: HotlistStore, importer: Importer
) -> None:
    """Fed: an Amber alert for an "Ice White" car. Must come out: its historical hits (the
    purpose screen reads what the entry is listed for, not the vehicle description)."""
    importer.import_lines("ncmec", [json.dumps({
        "alert_id": "AMB-7", "plate": "HIS123", "state": "CO",
        "vehicle": "ICE WHITE 2019 HONDA CIVIC"})])
    (entry,) = hotlists.lookup("HIS123")
    assert "ICE WHITE" in entry.reason
    found = historical_alerts(reads, hotlists, [entry], policy=load_policy(), mark=False)
    assert sorted(a.read.camera_id for a in found) == ["cam-1", "cam-2"]


def test_reads_before_the_entry_took_effect_are_no_hits(client: redis.Redis,
                                                        hotlists: HotlistStore) -> None:
    store = ReadStore(client)
    now = now_ms()
    before, after = (make_read("EFF123", camera=c, at_ms=now - h * 3_600_000)
                     for c, h in (("cam-1", 5), ("cam-2", 1)))
    store.put_many([before, after])
    entry = make_entry("EFF123", "NCIC-7").model_copy(update={"effective_at": now - 7_200_000})
    hotlists.replace_source(HotlistSource.NCIC, [entry])
    assert [a.read.read_id for a in historical_alerts(store, hotlists, [entry])] == [
        after.read_id]


def test_reads_past_retention_are_not_matched(client: redis.Redis,
                                              hotlists: HotlistStore) -> None:
    clock_now = [now_ms()]
    store = ReadStore(client, 100, clock=lambda: clock_now[0])
    store.put(make_read("AGE123", at_ms=clock_now[0]))
    entry = make_entry("AGE123")
    hotlists.replace_source(HotlistSource.NCIC, [entry])
    assert len(historical_alerts(store, hotlists, [entry], mark=False)) == 1
    clock_now[0] += 101_000
    assert historical_alerts(store, hotlists, [entry]) == []


# --- big imports: the event does not list what was added -------------------------------


def test_big_imports_announced_without_their_entries(reads: ReadStore, alerts: AlertStore,
                                                     hotlists: HotlistStore,
                                                     importer: Importer,
                                                     events: MemoryUpdatePublisher) -> None:
    n = INLINE_ADDED_LIMIT + 5
    filler = [f"F{i:05d},,Stolen vehicle" for i in range(n)]
    importer.import_lines("csv", csv_rows("OTH456,,Wanted felony suspect", *filler))
    (first,) = events.events
    assert first.added is None and first.added_all and first.added_truncated
    found = handle_hotlist_updates(records(events), reads=reads, alerts=alerts,
                                   hotlists=hotlists)
    assert [a.read.plate for a in found] == ["OTH456"]
    # A second big import adds HIS123 (and more than an event carries).
    events.events.clear()
    more = [f"G{i:05d},,Stolen vehicle" for i in range(n)]
    importer.import_lines("csv", csv_rows("OTH456,,Wanted felony suspect",
                                          "HIS123,,Stolen vehicle", *filler, *more))
    (second,) = events.events
    assert second.added is None and second.added_truncated and not second.added_all
    assert parse_hotlist_update(second.to_json_bytes(), hotlists).keys  # read from the store
    found = handle_hotlist_updates(records(events), reads=reads, alerts=alerts,
                                   hotlists=hotlists)
    assert sorted(a.read.camera_id for a in found) == ["cam-1", "cam-2"]
    assert {a.read.plate for a in found} == {"HIS123"}


# --- the event shapes ------------------------------------------------------------------


def test_parse_hotlist_update_shapes(hotlists: HotlistStore, importer: Importer,
                                     events: MemoryUpdatePublisher) -> None:
    entry = make_entry("ABC123", "N1")
    raw = entry.model_dump(mode="json")
    assert parse_hotlist_update(json.dumps({"added": [raw]})) == AddedEntries.of([entry])
    no_source = {k: v for k, v in raw.items() if k != "source"}
    parsed = parse_hotlist_update(json.dumps({"source": "CCIC", "entries": [no_source],
                                              "action": "upsert"}))
    assert {src for src, _, _ in parsed.keys} == {"CCIC"}
    assert not parse_hotlist_update(json.dumps({"removed": [raw]}))
    assert not parse_hotlist_update(json.dumps({"entries": [raw], "action": "remove"}))
    assert not parse_hotlist_update(b"not json")
    assert not parse_hotlist_update(json.dumps({"added_truncated": True, "source": "??"}))
    assert parse_hotlist_update(json.dumps({"added": [{"plate": "X"}, raw]})) == (
        AddedEntries.of([entry]))
    # A removal event of the real producer adds nothing.
    importer.import_lines("ncmec", [amber("RMV123", alert="AMB-9")])
    importer.import_lines("ncmec", [json.dumps({"alert_id": "AMB-9", "plate": "RMV123",
                                                "status": "cancelled"})])
    assert parse_hotlist_update(events.events[0].to_json_bytes(), hotlists)
    assert not parse_hotlist_update(events.events[1].to_json_bytes(), hotlists)
    # A big first import stands for its whole source.
    assert parse_hotlist_update(json.dumps({"source": "NCIC", "added": None, "added_all": True,
                                            "added_truncated": True, "version": 1}),
                                hotlists) == AddedEntries.of(sources=[HotlistSource.NCIC])


# --- delivery --------------------------------------------------------------------------


def test_alerts_whose_delivery_failed_are_produced_again(
    reads: ReadStore, alerts: AlertStore, hotlists: HotlistStore, importer: Importer,
    events: MemoryUpdatePublisher,
) -> None:
    importer.import_lines("ncmec", [amber("HIS123")])

    def broker_down(_: object) -> None:
        raise RuntimeError("broker down")

    with pytest.raises(RuntimeError):
        handle_hotlist_updates(records(events), reads=reads, alerts=alerts, hotlists=hotlists,
                               publish=broker_down)
    assert alerts.count(0, now_ms(), historical_only=True) == 0
    delivered: list = []
    assert len(handle_hotlist_updates(records(events), reads=reads, alerts=alerts,
                                      hotlists=hotlists, publish=delivered.extend)) == 2
    assert len(delivered) == 2
    assert handle_hotlist_updates(records(events), reads=reads, alerts=alerts,
                                  hotlists=hotlists) == []


def test_hotlist_updates_from_kafka_publish_historical_alerts(
    kafka: str, reads: ReadStore, alerts: AlertStore, hotlists: HotlistStore
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(hotlist_updates=f"test.hl.{tag}", alerts=f"test.alerts.{tag}")
    ensure_topics(kafka, [topics.hotlist_updates, topics.alerts], partitions=1)
    try:
        # The real producer: an NCMEC drop imported twice (the same update twice).
        importer = Importer(hotlists, publisher=KafkaUpdatePublisher(
            kafka, topics.hotlist_updates, create_topic=False))
        for _ in range(2):
            importer.import_lines("ncmec", [amber("HIS123", alert="AMB-7")])
        sent = run_hotlist_updates(kafka, reads=reads, alerts=alerts, hotlists=hotlists,
                                   topics=topics, group_id=f"test-{tag}", idle_exit_s=1.5)
        assert sent == 2
        published = read_all(kafka, topics.alerts, expect=2, timeout=15)
        assert len({r.json()["alert_id"] for r in published}) == 2
        assert all(r.json()["historical"] for r in published)
        assert {r.json()["entry"]["entry_id"] for r in published} == {"AMB-7"}
    finally:
        delete_topics(kafka, [topics.hotlist_updates, topics.alerts])
