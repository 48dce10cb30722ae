"""The flow's hotlist join when Redis is down or a list has vanished: reads go out, the
joins owed are parked (bounded, in the parked_joins step's state) and joined later,
nothing is lost silently. Against a real redis-server of the test's own.
"""

from __future__ import annotations

import json
import logging
import pickle
import time

import pytest
from hotlist_helpers import entry
from prometheus_client import REGISTRY
from safeguard_builders import make_read

from connectors.flow_sink import OutRecord
from flows.hotlist_join import Backoff, HotlistJoin, Parked
from flows.pipeline import ParkedJoins, join_batch
from hotlists.store import HotlistStore
from kernel.contracts import Alert, HotlistSource
from kernel.settings import Settings
from sim.local_services import LocalRedis


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _drain(parked: ParkedJoins, timeout_s: float = 10) -> list[OutRecord]:
    """Run the step's retries (its timer) until nothing is parked or `timeout_s`."""
    out: list[OutRecord] = []
    deadline = time.monotonic() + timeout_s
    while parked.parked and time.monotonic() < deadline:
        out.extend(parked.on_notify()[0])
        time.sleep(0.05)
    return out


def _alerts(records: list[OutRecord | Parked]) -> list[Alert]:
    return [Alert.model_validate_json(r.value) for r in records
            if isinstance(r, OutRecord) and r.topic == Settings().topics.alerts]


def test_a_vanished_list_is_an_outage_and_its_reads_are_joined_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Fed: NCIC (HOT123, HOT456) and NCMEC (AMB777) serving; a batch reading HOT123 (one
    # alert); then FLUSHALL (a Redis restarted empty) and a batch reading HOT456 and
    # AMB777; then NCIC alone imported again. Must hold: after the flush the reads still
    # go out, no alert is made from an empty answer, both reads are parked for the two
    # vanished lists, the outage is counted once per list and shown; once NCIC is back
    # HOT456's alert comes out (with the id a live join gives) and both stay parked for
    # NCMEC only; when NCMEC is back AMB777's alert comes too and nothing stays parked.
    caplog.set_level(logging.ERROR, logger="flows.hotlist_join")
    with LocalRedis() as server:
        store = HotlistStore(server.client())
        ncic = [entry("HOT123", "N1"), entry("HOT456", "N2")]
        ncmec = [entry("AMB777", "M1", HotlistSource.NCMEC, priority=1)]
        store.replace_source(HotlistSource.NCIC, ncic)
        store.replace_source(HotlistSource.NCMEC, ncmec)
        settings = Settings(redis_url=server.url, metrics_port=0)
        outages = _value("alpr_hotlist_source_outages_total", source="NCIC")

        first = join_batch(settings, [make_read("HOT123")])
        assert [a.entry.entry_id for a in _alerts(first)] == ["N1"]

        server.client().flushall()
        reads = [make_read("HOT456", camera="cam-2"), make_read("AMB777", camera="cam-3")]
        out = join_batch(settings, reads)
        assert [(r.topic, r.key) for r in out if isinstance(r, OutRecord)] == [
            (settings.topics.reads, b"cam-2"), (settings.topics.reads, b"cam-3")]
        owed = [p for p in out if isinstance(p, Parked)]
        assert [(p.read.plate, sorted(p.sources)) for p in owed] == [
            ("HOT456", ["NCIC", "NCMEC"]), ("AMB777", ["NCIC", "NCMEC"])]
        assert _value("alpr_hotlist_source_outages_total", source="NCIC") == outages + 1
        assert _value("alpr_hotlist_source_missing", source="NCIC") == 1
        assert any("NCIC is required or was serving, and has no entries" in r.getMessage()
                   for r in caplog.records)

        parked = ParkedJoins(settings, None)
        for p in owed:
            parked.on_item(p)
        assert parked.on_notify()[0] == []  # still gone: nothing made from an empty list
        store.replace_source(HotlistSource.NCIC, ncic)
        back = _alerts(parked.on_notify()[0])
        assert [(a.read.plate, a.entry.entry_id) for a in back] == [("HOT456", "N2")]
        # Both still owe a join against NCMEC (HOT456 could be on it too).
        assert [(p.read.plate, sorted(p.sources)) for p in parked.parked] == [
            ("HOT456", ["NCMEC"]), ("AMB777", ["NCMEC"])]
        assert _value("alpr_hotlist_source_missing", source="NCIC") == 0
        # Same id as a live join of the same read: consumers drop a duplicate.
        live = _alerts(join_batch(settings, [reads[0]]))
        assert [a.alert_id for a in live] == [back[0].alert_id]

        store.replace_source(HotlistSource.NCMEC, ncmec)
        amber = _alerts(_drain(parked))
        assert [(a.read.plate, a.entry.entry_id) for a in amber] == [("AMB777", "M1")]
        assert parked.parked == []
        # An outage seen again later counts again: the count is of outages, not of joins.
        assert _value("alpr_hotlist_source_outages_total", source="NCIC") == outages + 1


def test_parked_joins_are_bounded_and_every_drop_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Fed: 5 parked reads into a step allowed 3. Must hold: the newest 3 kept (a vehicle
    # seen now matters more than one seen long ago), 2 counted as dropped, one error
    # line naming how many and the limit's setting.
    settings = Settings(redis_url="redis://127.0.0.1:1/0", hotlist_parked_max=3,
                        metrics_port=0)
    dropped = _value("alpr_hotlist_parked_dropped_total")
    caplog.set_level(logging.ERROR, logger="flows.pipeline")
    parked = ParkedJoins(settings, None)
    for i in range(5):
        parked.on_item(Parked(make_read(f"ABC{i:03d}", camera=f"cam-{i}")))
    assert [p.read.plate for p in parked.parked] == ["ABC002", "ABC003", "ABC004"]
    assert _value("alpr_hotlist_parked_dropped_total") == dropped + 2
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 2 and all("ALPR_HOTLIST_PARKED_MAX" in e for e in errors)


def test_parked_joins_survive_a_snapshot_and_restore() -> None:
    # Fed: two reads parked (one for every source, one for NCMEC only); the step's
    # snapshot pickled and unpickled, as bytewax recovery stores it. Must hold: a step
    # built from it owes the same joins, and joins them once Redis serves the lists.
    with LocalRedis() as server:
        settings = Settings(redis_url=server.url, metrics_port=0)
        first = ParkedJoins(settings, None)
        first.on_item(Parked(make_read("HOT123")))
        first.on_item(Parked(make_read("AMB777", camera="cam-2"),
                             frozenset({HotlistSource.NCMEC})))
        restored = ParkedJoins(settings, pickle.loads(pickle.dumps(first.snapshot())))
        assert restored.parked == first.parked
        store = HotlistStore(server.client())
        store.replace_source(HotlistSource.NCIC, [entry("HOT123", "N1"),
                                                  entry("AMB777", "N7")])
        store.replace_source(HotlistSource.NCMEC,
                             [entry("AMB777", "M1", HotlistSource.NCMEC, priority=1)])
        out = _drain(restored)
        # AMB777 was owed a join against NCMEC only (NCIC had answered already).
        assert sorted((json.loads(r.value)["read"]["plate"], json.loads(r.value)["entry"][
            "entry_id"]) for r in out) == [("AMB777", "M1"), ("HOT123", "N1")]


def test_a_read_parked_by_one_process_waits_for_the_lists_it_had_seen_in_another() -> None:
    # Fed: a read HOT123 parked by a process that had seen NCIC serving (its lookup
    # failed: Redis down), retried by another process that never saw any list (the
    # parked step's worker), first against a Redis back empty, then after NCIC is
    # imported. Must hold: the empty answer is not taken as "no hit" (the read stays
    # owed to NCIC); once NCIC serves, its alert comes and nothing stays parked.
    with LocalRedis() as server:
        store = HotlistStore(server.client())
        parker = HotlistJoin(lambda: store, Backoff(1.0))
        store.replace_source(HotlistSource.NCIC, [entry("ZZZ999", "N0")])
        assert parker.join([make_read("ZZZ999")]).alerts  # it has seen NCIC serve
        server.client().flushall()
        server.stop()
        [owed] = parker.join([make_read("HOT123")]).parked
        assert owed.expected == {HotlistSource.NCIC}
        server.start()  # back, empty

        retrier = HotlistJoin(lambda: store, Backoff(1.0))
        alerts, still = retrier.rejoin([pickle.loads(pickle.dumps(owed))])
        assert alerts == [] and [p.sources for p in still] == [{HotlistSource.NCIC}]
        store.replace_source(HotlistSource.NCIC, [entry("HOT123", "N1")])
        alerts, still = retrier.rejoin(still)
        assert [(a.read.plate, a.entry.entry_id) for a in alerts] == [("HOT123", "N1")]
        assert still == []


def test_a_required_list_missing_at_start_is_an_outage_in_a_process_that_never_saw_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Fed: a Redis holding NCMEC only (NCIC never imported, or lost before this process
    # started), a flow process told ALPR_HOTLIST_REQUIRED_SOURCES="ncic, NCMEC"; a batch
    # reading HOT123 (on NCIC, imported later). Must hold: the read goes out; no "no hit"
    # is taken from the missing list: the join is parked for NCIC, the outage counted
    # and logged; once NCIC is imported the alert comes. Without the setting, the same
    # process cannot tell NCIC from a list this site never uses: the read is joined (no
    # alert) and nothing is parked. An unknown source name is refused by the settings.
    caplog.set_level(logging.ERROR, logger="flows.hotlist_join")
    with LocalRedis() as server:
        store = HotlistStore(server.client())
        store.replace_source(HotlistSource.NCMEC,
                             [entry("AMB777", "M1", HotlistSource.NCMEC, priority=1)])
        plain = HotlistJoin(lambda: store, Backoff(1.0))
        assert plain.join([make_read("HOT123")]).parked == []

        settings = Settings(redis_url=server.url, metrics_port=0,
                            hotlist_required_sources="ncic, NCMEC")
        outages = _value("alpr_hotlist_source_outages_total", source="NCIC")
        out = join_batch(settings, [make_read("HOT123", camera="cam-9")])
        assert [(r.topic, r.key) for r in out if isinstance(r, OutRecord)] == [
            (settings.topics.reads, b"cam-9")]
        [owed] = [p for p in out if isinstance(p, Parked)]
        assert owed.sources == {HotlistSource.NCIC}
        assert _value("alpr_hotlist_source_outages_total", source="NCIC") == outages + 1
        assert any("NCIC is required or was serving" in r.getMessage() for r in caplog.records)

        parked = ParkedJoins(settings, None)
        parked.on_item(owed)
        store.replace_source(HotlistSource.NCIC, [entry("HOT123", "N1")])
        alerts = _alerts(_drain(parked))
        assert [(a.read.plate, a.entry.entry_id) for a in alerts] == [("HOT123", "N1")]
    with pytest.raises(ValueError, match=r"unknown hotlist source.*NCIX"):
        Settings(hotlist_required_sources="NCIC,NCIX")
