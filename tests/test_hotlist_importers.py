"""The four hotlist importers (pure parsing, no Redis), fed files written from the format
facts in shared/notes/hotlists-and-practice.md.

Every test says what it feeds and what must come out: good rows become entries with a
category and a priority; each malformed row becomes a rejection with its line number and
a reason code (never an exception, never a silent drop); immigration-related rows become
refusals (counted, never returned).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from hotlists.categories import NCIC_LIST_CODES, VEHICLE_MARK
from hotlists.importers import FORMATS, get_format, ncmec
from hotlists.importers.agency_csv import detect_delimiter, parse_agency_csv
from hotlists.importers.base import ImportStats
from hotlists.importers.ccic import parse_ccic
from hotlists.importers.ncic import parse_ncic
from hotlists.importers.ncmec import parse_ncmec
from kernel.contracts import HotlistEntry, HotlistSource


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def rejected_lines(stats: ImportStats) -> dict[int, str]:
    return {r.line_no: r.code for r in stats.samples}


# --- NCIC ---------------------------------------------------------------------------------

# Columns (notes): 0 list code, 1-19 NCIC number + ORI, 19-27 incident date, 27-37 plate,
# 37-39 state, 39-43 tag year, 45-49 vehicle year, 49-53 make, 53-56 model, 58- colour.
# Written out piece by piece, independently of hotlists.importers.ncic.format_record.
NCIC_EXAMPLE = "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK"  # the notes'


def ncic_line(code: str, rec: str, date: str, plate: str, state: str, rest: str = "") -> str:
    assert len(code) == 1 and len(rec) == 18 and len(date) == 8 and len(state) == 2
    return code + rec + date + plate.ljust(10) + state + rest


NCIC_FILE = [
    "NCIC LPR EXTRACT 202401150600 FBI CJIS\n",  # 1: header
    NCIC_EXAMPLE + "\n",  # 2
    ncic_line("A", "000000001CO0000000", "20240114", "RK828AG", "CO",
              "    PC2015TOYTCAMPCSIL") + "\n",  # 3: an Amber alert
    ncic_line("I", "000000002TX0000000", "20240110", "IMM1234", "TX") + "\n",  # 4: immigration
    ncic_line("Q", "000000003CA0000000", "        ", "ZZZ999", "CA") + "\n",  # 5: unknown code
    ncic_line("W", "000000004CA0000000", "20241301", "WNT777", "CA") + "\n",  # 6: month 13
    "P000000005CA0000000        PLT555    C\n",  # 7: cut short in the state
    ncic_line("P", "000000006CA0000000", "        ", "PL$556", "CA") + "\n",  # 8: bad plate
    "\n",  # 9: blank: ignored, not a row
    ncic_line("P", "000000007OH0000000", "        ", "PLT 557", "0H") + "\r\n",  # 10: 0H = OH
]  # fmt: skip


def test_ncic_extract_good_bad_and_refused_rows() -> None:
    stats = ImportStats()
    entries = list(parse_ncic(NCIC_FILE, stats))

    assert [e.plate for e in entries] == ["AB123456", "RK828AG", "PLT557"]
    stolen, amber, plate = entries
    assert stolen.source is HotlistSource.NCIC and stolen.state == "CA"
    assert stolen.entry_id == "V123456789LA0570200"
    assert (stolen.category, stolen.priority) == ("stolen_vehicle", 3)
    assert stolen.reason == f"Stolen vehicle (incident 2019-05-09){VEHICLE_MARK}BLK 2009 YAMA CYL"
    assert (amber.category, amber.priority) == ("amber_alert", 1)
    assert (plate.state, plate.category) == ("OH", "stolen_plate")

    assert stats.header is not None and stats.header.startswith("NCIC LPR EXTRACT")
    assert rejected_lines(stats) == {5: "unknown_list_code", 6: "bad_date", 7: "short_line",
                                     8: "bad_plate"}
    assert stats.samples[0].raw.startswith("Q000000003")
    # The Immigration Violator record: counted with its line, never returned.
    assert dict(stats.refused) == {"immigration": 1} and stats.refused_lines == [4]
    assert (stats.rows, stats.accepted, stats.rejected_total) == (8, 3, 4)
    assert stats.bad_share == pytest.approx(4 / 8)


def test_every_ncic_list_code_maps_to_a_category_and_priority() -> None:
    codes = "VPWMAFCHKLRTX"
    assert set(NCIC_LIST_CODES) == set(codes)
    lines = [ncic_line(c, f"{i:09d}CO0000000", "20240101", f"COD{i:03d}", "CO") for i, c in
             enumerate(codes)]
    stats = ImportStats()
    entries = list(parse_ncic(lines, stats))
    assert stats.rejected_total == 0 and len(entries) == len(codes)
    by_code = {e.entry_id[0]: e for e in entries}
    assert by_code["A"].priority == 1  # a child in danger first
    assert by_code["V"].category == "stolen_vehicle" and by_code["P"].category == "stolen_plate"
    assert by_code["X"].category == "sex_offender" and by_code["R"].priority == 3
    assert len({e.category for e in entries}) == len(codes)  # each code its own category
    assert all(1 <= e.priority <= 5 for e in entries)


def test_ncic_first_line_record_is_not_taken_for_a_header() -> None:
    stats = ImportStats()
    entries = list(parse_ncic([NCIC_EXAMPLE], stats))
    assert [e.plate for e in entries] == ["AB123456"] and stats.header is None


def test_ncic_header_is_recognised_by_its_content_not_by_being_first() -> None:
    # A first line naming NCIC, or the PLATE and STATE columns, is a header; a first line
    # that is neither (here a record with an unknown list code) is a malformed row.
    for header in ("NCIC LPR EXTRACT 202401150600", "CODE NCIC NUMBER ORI DATE PLATE STATE"):
        stats = ImportStats()
        assert [e.plate for e in parse_ncic([header, NCIC_EXAMPLE], stats)] == ["AB123456"]
        assert stats.header == header and stats.rows == 1 and stats.rejected_total == 0
    unknown = ncic_line("Q", "000000003CA0000000", "        ", "ZZZ999", "CA")
    stats = ImportStats()
    assert [e.plate for e in parse_ncic([unknown, NCIC_EXAMPLE], stats)] == ["AB123456"]
    assert stats.header is None and rejected_lines(stats) == {1: "unknown_list_code"}
    assert (stats.rows, stats.rejected_total) == (2, 1)
    # A header further down is no header: the extract has one, on top.
    stats = ImportStats()
    list(parse_ncic([NCIC_EXAMPLE, "NCIC LPR EXTRACT 202401150600"], stats))
    assert stats.header is None and rejected_lines(stats) == {2: "short_line"}


# --- CCIC ---------------------------------------------------------------------------------


def ccic_line(plate: str, state: str, category: str, vehicle: str = "") -> str:
    # Notes: plate, state, then a text category; the openalpr importer's widths 10/2/22.
    return plate.ljust(10) + state + category.ljust(22)[:22] + vehicle


CCIC_FILE = [
    ccic_line("ABC123", "CO", "Attempt To Locate", "2002 FORD FOC BLK"),  # 1
    ccic_line("XYZ789", "CO", "Felony Warrant"),  # 2
    ccic_line("STL001", "CO", "STOLEN PLATE"),  # 3: case does not matter
    ccic_line("NEW001", "CO", "Gang Affiliate"),  # 4: unknown category: kept, counted
    ccic_line("IMM001", "CO", "ICE Detainer"),  # 5: immigration: refused
    ccic_line("IMM002", "CO", "Immigration Hold", "2010 HOND CIV"),  # 6: refused
    ccic_line("BAD001", "C1", "Stolen Plate"),  # 7: bad state
    "SHORT     CO",  # 8: no category
    ccic_line("ICE001", "CO", "Stolen Vehicle", "2019 HYUN ELA ICE WHITE"),  # 9: a colour
]  # fmt: skip


def test_ccic_extract_categories_refusals_and_rejections() -> None:
    stats = ImportStats()
    entries = {e.plate: e for e in parse_ccic(CCIC_FILE, stats)}
    assert sorted(entries) == ["ABC123", "ICE001", "NEW001", "STL001", "XYZ789"]
    assert (entries["ABC123"].category, entries["ABC123"].priority) == ("attempt_to_locate", 3)
    assert entries["ABC123"].reason == f"Attempt to locate{VEHICLE_MARK}2002 FORD FOC BLK"
    assert (entries["XYZ789"].category, entries["XYZ789"].priority) == ("felony_warrant", 2)
    assert entries["STL001"].category == "stolen_plate"
    assert entries["NEW001"].reason == "Gang Affiliate" and entries["NEW001"].priority == 2
    assert dict(stats.unknown_categories) == {"Gang Affiliate": 1}
    # A vehicle described as "ICE WHITE" is a stolen car, not an immigration record.
    assert entries["ICE001"].category == "stolen_vehicle"
    assert all(e.source is HotlistSource.CCIC and e.state == "CO" for e in entries.values())
    # Same row, same id from one drop to the next (the extract has no record id).
    again = {e.plate: e for e in parse_ccic(CCIC_FILE, ImportStats())}
    assert again["ABC123"].entry_id == entries["ABC123"].entry_id

    assert dict(stats.refused) == {"immigration": 2} and stats.refused_lines == [5, 6]
    assert rejected_lines(stats) == {7: "bad_state", 8: "short_line"}


def test_ccic_header_is_recognised_by_its_content_not_by_being_first() -> None:
    good = ccic_line("ABC123", "CO", "Stolen Plate")
    for header in ("CCIC HOTLIST 20240115", "PLATE STATE   LIST TYPE"):
        stats = ImportStats()
        assert [e.plate for e in parse_ccic([header, good], stats)] == ["ABC123"]
        assert stats.header == header and stats.rows == 1 and stats.rejected_total == 0
    # A first line that is neither a record nor a header: rejected, the rest imported.
    stats = ImportStats()
    assert [e.plate for e in parse_ccic([ccic_line("BAD001", "C1", "Stolen Plate"), good],
                                        stats)] == ["ABC123"]
    assert stats.header is None and rejected_lines(stats) == {1: "bad_state"}
    assert (stats.rows, stats.rejected_total) == (2, 1)
    # Words alone do not make a header: a record (known category) whose plate is CCIC.
    stats = ImportStats()
    assert [e.plate for e in parse_ccic([ccic_line("CCIC", "CO", "Stolen Plate"), good],
                                        stats)] == ["CCIC", "ABC123"]
    assert stats.header is None


# --- NCMEC Amber alerts -----------------------------------------------------------------

NCMEC_FILE = """\
{"alert_id": "AMB-2024-001", "plate": "7kqx 214", "state": "ca", "vehicle": "silver 2015 Toyota Camry", "issued": "2024-01-15T06:30:00Z", "expires": "2024-01-18"}
{"alert_id": "AMB-2024-002", "plate": "RK828AG", "vehicle": "2012 Hyundai Elantra, Ice White"}
{"alert_id": "AMB-2024-000", "plate": "OLD123", "status": "cancelled"}
{"alert_id": "AMB-2024-003", "plate": "BAD*1"}
{"plate": "NOID1"}
{"alert_id": "AMB-2024-004", "plate": "X1", "colour": "red"}
not json at all
{"alert_id": "AMB-2024-005", "plate": "AB12", "status": "maybe"}
"""  # noqa: E501


def test_ncmec_alerts_cancellations_and_bad_records() -> None:
    stats = ImportStats()
    entries = list(parse_ncmec(NCMEC_FILE.splitlines(keepends=True), stats))
    assert [e.entry_id for e in entries] == ["AMB-2024-001", "AMB-2024-002"]
    first, second = entries
    assert (first.plate, first.state, first.priority, first.category) == (
        "7KQX214", "CA", 1, "amber_alert")
    assert first.expires_at == ms(2024, 1, 19) - 1  # lives through the expiry day
    assert first.reason == (f"Amber alert AMB-2024-001 (issued 2024-01-15 06:30Z)"
                            f"{VEHICLE_MARK}silver 2015 Toyota Camry")
    # "Ice White" is a colour: the Amber alert is kept, not refused.
    assert second.source is HotlistSource.NCMEC and stats.refused_total == 0
    assert stats.removals == [("OLD123", "AMB-2024-000")]
    assert rejected_lines(stats) == {4: "bad_plate", 5: "missing_alert_id", 6: "unknown_field",
                                     7: "bad_json", 8: "bad_status"}


def test_ncmec_array_and_pretty_printed_records_keep_line_numbers() -> None:
    text = '[\n {\n  "alert_id": "A1",\n  "plate": "AAA111"\n },\n {"alert_id": "A2"}\n]\n'
    stats = ImportStats()
    entries = list(parse_ncmec(text.splitlines(keepends=True), stats))
    assert [e.plate for e in entries] == ["AAA111"]
    assert rejected_lines(stats) == {6: "empty_plate"}


def test_ncmec_alerts_with_text_that_is_not_utf8_are_rejected() -> None:
    # Files are decoded with surrogateescape: a bad byte survives as a lone surrogate, which
    # no JSON or Redis write accepts; a \udcff escape decodes to the same. Fed: a bad byte
    # in a vehicle and in a field name, a surrogate escape, and a good alert.
    data = (b'{"alert_id": "A1", "plate": "AAA111", "vehicle": "silver \xff Camry"}\n'
            b'{"alert_id": "A2", "plate": "BBB222", "veh\xfeicle": "red"}\n'
            b'{"alert_id": "A3", "plate": "CCC333", "vehicle": "blue \\udcff van"}\n'
            b'{"alert_id": "A4", "plate": "DDD444", "vehicle": "green Ford"}\n'
            ).decode("utf-8", "surrogateescape")
    stats = ImportStats()
    entries = list(parse_ncmec(data.splitlines(keepends=True), stats))
    assert [e.entry_id for e in entries] == ["A4"]
    assert rejected_lines(stats) == {1: "bad_encoding", 2: "bad_encoding", 3: "bad_encoding"}
    assert all("UTF-8" in r.detail and r.detail.isascii() for r in stats.samples)
    assert all(e.model_dump_json() for e in entries)


def ncmec_drop(alerts: int) -> tuple[str, dict[int, str]]:
    """A JSON Lines drop of `alerts` records (CRLF, blank and pretty-printed ones among
    them, so line numbers drift from record counts) and the rejections it must give:
    line -> code. Every 500th record is not JSON, and every 500th a 4-line alert with a
    bad plate; every other one is good."""
    lines: list[str] = []
    expected: dict[int, str] = {}
    for i in range(alerts):
        good = f'{{"alert_id": "A{i}", "plate": "P{i:06d}", "state": "CA"}}'
        if i % 500 == 498:
            expected[len(lines) + 1] = "bad_json"
            lines.append(f'{{"alert_id": "A{i}", "plate": \n')  # cut short mid-record
        elif i % 500 == 250:
            expected[len(lines) + 1] = "bad_plate"
            lines += ["{\n", f'  "alert_id": "A{i}",\n', '  "plate": "B*D"\n', "}\n"]
        elif i % 7 == 3:
            lines += ["{\n", f'  "alert_id": "A{i}", "plate": "P{i:06d}"\n', "}\r\n", "\n"]
        else:
            lines.append(good + ("\r\n" if i % 3 else "\n"))
    return "".join(lines), expected


def test_ncmec_line_numbers_stay_exact_deep_in_a_large_drop() -> None:
    # Fed: 4,000 alerts over ~5,700 lines, 16 malformed ones spread to the end (one cut
    # short mid-record, whose decoding runs into the next line), then the same drop
    # four times over. Must survive: every rejection on the exact line its record
    # starts, the good alerts all accepted, and the 4x drop giving the same rejections
    # shifted by whole drops and the same entries four times.
    text, expected = ncmec_drop(4000)
    stats = ImportStats()
    entries = list(parse_ncmec(text.splitlines(keepends=True), stats))
    assert rejected_lines(stats) == expected and len(expected) == 16
    assert max(expected) > 5000
    assert (stats.rows, stats.accepted, len(entries)) == (4000, 3984, 3984)
    assert entries[-1].entry_id == "A3999" and entries[-1].plate == "P003999"

    lines_per_drop = text.count("\n")
    stats4 = ImportStats()
    entries4 = list(parse_ncmec((text * 4).splitlines(keepends=True), stats4))
    assert rejected_lines(stats4) == {line + k * lines_per_drop: code
                                      for k in range(4) for line, code in expected.items()}
    assert [r.detail for r in stats4.samples] == [r.detail for r in stats.samples] * 4
    assert entries4 == entries * 4


class _ScanCounted(str):
    """A text that tallies the characters its newline counts and searches cover and its
    slices copy (slices tally in turn: a JSONDecodeError counts the newlines before its
    position in the text it was decoding)."""

    scanned = 0

    def count(self, sub: Any, start: Any = None, end: Any = None) -> int:
        s, e, _ = slice(start, end).indices(len(self))
        _ScanCounted.scanned += max(0, e - s)
        return super().count(sub, start, end)

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        found = super().find(sub, start, end)
        s, e, _ = slice(start, end).indices(len(self))
        _ScanCounted.scanned += max(0, (found + 1 if found >= 0 else e) - s)
        return found

    def __getitem__(self, key: Any) -> str:
        part = super().__getitem__(key)
        if not isinstance(key, slice):
            return part
        _ScanCounted.scanned += len(part)
        return _ScanCounted(part)


def test_ncmec_parsing_work_grows_with_the_drop_not_with_its_square(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: the 1,000- and 4,000-alert drops above as texts that tally the characters
    # their newline counts/searches cover and their slices copy. Must survive: the
    # records and the lines they start on, while that work grows 4x for 4x the alerts
    # and stays within a few times the text. Before, each record's line was counted
    # from the top (20,000 alerts took 15 s), and so was each JSON error's, inside
    # JSONDecodeError: 16x the work for 4x the alerts. Counts work, never time.
    work: dict[int, int] = {}
    for alerts in (1000, 4000):
        text, expected = ncmec_drop(alerts)
        monkeypatch.setattr(_ScanCounted, "scanned", 0)
        records = list(ncmec._records(_ScanCounted(text)))
        assert len(records) == alerts
        assert {line for line, rec in records if isinstance(rec, ncmec._Bad)} == {
            line for line, code in expected.items() if code == "bad_json"}
        work[alerts] = _ScanCounted.scanned
        assert work[alerts] <= 8 * len(text)
    assert work[4000] <= 4.5 * work[1000]


# Values cut or broken at a line's end, where the importer's decoding window may end.
NCMEC_JSON_EDGES = [
    '{"a": 1}\n{"b": 2}\n', '{\n "a"\n :\n [1,\n 2]\n}\n', '{"a": \n', '{"a": 1,\n}\n',
    '{"a": "x\n"}\n', '{"a": "\\\n"}\n', '{"a": "\\u00\n41"}\n', '{"a": "\\ud83d\n\\ude00"}\n',
    '{"a": nul\nl}\n', '{"a": tr\n', '{"a": -\n1}\n', '{"a": 1.\n5}\n', '{"a": 1e\n5}\n',
    '[1,\n2\n', '{"a": 1}', '{"a": [1, 2', '12\n34', 'Infinity\n', '-Infinity', '"x', '{"a"\n',
    '{"a": {"b": {"c": [\n\n\n1]}}}\n', '[\n{"a": 1},\n{"b": "\\q"},\n{"c": 3}\n]\n',
]


@pytest.mark.parametrize("window", [1, 3, 256])
def test_ncmec_windowed_decoding_matches_decoding_the_whole_text(
    window: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: values cut, broken or spread at line ends, decoded from every position that
    # is not whitespace, with the importer's decoding window as small as 1 character.
    # Must survive: the same value and end, or the same error message, as json's
    # raw_decode of the whole text (the message is the rejection's detail).
    monkeypatch.setattr(ncmec, "_WINDOW", window)
    decoder = json.JSONDecoder()

    def outcome(decode: Callable[..., tuple[Any, int]], *args: Any) -> tuple[Any, ...]:
        try:
            return decode(*args)
        except json.JSONDecodeError as exc:
            return ("error", exc.msg)

    for text in NCMEC_JSON_EDGES:
        for pos in (i for i, c in enumerate(text) if not c.isspace()):
            windowed = outcome(ncmec._decode_at, decoder, text, pos)
            assert windowed == outcome(decoder.raw_decode, text, pos), (text, pos)


# --- agency CSV ---------------------------------------------------------------------------


@pytest.mark.parametrize("delim", [",", ";", "\t", ":"])
def test_agency_csv_delimiter_is_detected(delim: str) -> None:
    rows = [
        ["PlateNumber", "PlateState", "Category", "EffectiveDate", "ExpiryDate"],
        ["ABC123", "CO", "Stolen vehicle", "2024-01-01", "2030-12-31"],
        ["XYZ 789", "WY", "Felony warrant", "", ""],
    ]
    lines = [delim.join(r) + "\n" for r in rows]
    assert detect_delimiter([ln.rstrip("\n") for ln in lines]) == delim
    stats = ImportStats()
    entries = list(parse_agency_csv(lines, stats))
    assert [(e.plate, e.state) for e in entries] == [("ABC123", "CO"), ("XYZ789", "WY")]
    assert entries[0].effective_at == ms(2024, 1, 1)
    assert entries[0].expires_at == ms(2031, 1, 1) - 1
    assert stats.rejected_total == 0 and stats.header is not None


def test_agency_csv_without_header_uses_the_column_order() -> None:
    lines = ["ABC123;CO;Stolen vehicle;;20300101\n", "DEF456;;Missing child\n"]
    entries = list(parse_agency_csv(lines, ImportStats()))
    assert [(e.plate, e.state, e.priority) for e in entries] == [
        ("ABC123", "CO", 3), ("DEF456", None, 1)]
    assert entries[0].expires_at == ms(2030, 1, 2) - 1


AGENCY_FILE = """\
Category,PlateNumber,ExpiryDate,PlateState,Notes
Stolen vehicle,ABC123,2030-01-31,CO,blue sedan
Amber alert - abducted child,AMB111,,CO,
Wanted: armed robbery,WNT222,01/31/2030,,
Person of interest,POI333,,CO,
ICE detainer,IMM444,,CO,
Stolen vehicle,"AB$123",,CO,
Stolen vehicle,TOOLONGPLATE1,,CO,
Stolen vehicle,BAD555,2030-02-30,CO,
Stolen vehicle,ABC123,2030-01-31,CO,again
Stolen vehicle,ST2666,,COLORADO,
Stolen vehicle,MANY777,,CO,x,y
,,,,
Deportation order pending,IMM888,,CO,
"""


def test_agency_csv_columns_by_name_categories_rejections_and_refusals() -> None:
    stats = ImportStats()
    entries = {e.plate: e for e in parse_agency_csv(AGENCY_FILE.splitlines(True), stats)}
    assert sorted(entries) == ["ABC123", "AMB111", "POI333", "WNT222"]
    assert entries["ABC123"].expires_at == ms(2030, 2, 1) - 1 and entries["ABC123"].state == "CO"
    assert entries["AMB111"].priority == 1 and entries["WNT222"].priority == 2
    assert entries["POI333"].priority == 3  # no keyword: the default
    assert entries["WNT222"].reason == "Wanted: armed robbery"  # the text is kept for people
    assert all(e.source is HotlistSource.LOCAL for e in entries.values())

    assert rejected_lines(stats) == {7: "bad_plate", 8: "bad_plate", 9: "bad_date",
                                     10: "duplicate", 11: "bad_state", 12: "bad_field_count",
                                     13: "empty_plate"}
    duplicate = next(r for r in stats.samples if r.code == "duplicate")
    assert "line 2" in duplicate.detail
    assert dict(stats.refused) == {"immigration": 2} and stats.refused_lines == [6, 14]


def test_agency_csv_expiry_before_effective_is_rejected() -> None:
    lines = ["PlateNumber;EffectiveDate;ExpiryDate\n", "ABC123;2030-02-01;2030-01-01\n"]
    stats = ImportStats()
    assert list(parse_agency_csv(lines, stats)) == []
    assert rejected_lines(stats) == {2: "bad_date"}


def test_agency_csv_rows_with_bytes_that_are_not_utf8_are_rejected() -> None:
    # Files are decoded with surrogateescape: a bad byte survives as a lone surrogate, which
    # no JSON or Redis write accepts. Fed: a bad byte in a category and in a plate.
    data = (b"PlateNumber,PlateState,Category\n"
            b"ABC123,CO,Stolen \xff car\n"
            b"AB\xfe12,CO,Stolen vehicle\n"
            b"GOOD1,CO,Stolen vehicle\n").decode("utf-8", "surrogateescape")
    stats = ImportStats()
    entries = list(parse_agency_csv(data.splitlines(keepends=True), stats))
    assert [e.plate for e in entries] == ["GOOD1"]
    assert rejected_lines(stats) == {2: "bad_encoding", 3: "bad_encoding"}
    assert "UTF-8" in stats.samples[0].detail
    assert all(e.model_dump_json() for e in entries)


def test_agency_csv_header_repeating_a_column_reads_no_row() -> None:
    # Which PlateNumber is the plate? Guessing could store the wrong plate: every row is
    # rejected instead, so the import's bad-row check keeps the serving list.
    lines = ["PlateNumber,PlateState,platenumber\n", "ABC123,CO,XYZ789\n", "DEF456,CO,\n"]
    stats = ImportStats()
    assert list(parse_agency_csv(lines, stats)) == []
    assert rejected_lines(stats) == {1: "bad_header", 2: "bad_header", 3: "bad_header"}
    assert "platenumber" in stats.samples[0].detail and "line 1" in stats.samples[1].detail
    assert stats.bad_share == 1.0
    # Nor when a column name holds a byte that is not UTF-8.
    data = b"Category,PlateNumber,Plate\xffState\nStolen,ABC123,CO\n".decode(
        "utf-8", "surrogateescape")
    stats = ImportStats()
    assert list(parse_agency_csv(data.splitlines(keepends=True), stats)) == []
    assert rejected_lines(stats) == {1: "bad_header", 2: "bad_header"}


def test_agency_csv_epoch_seconds_are_named_as_such() -> None:
    lines = ["PlateNumber;ExpiryDate\n", "ABC123;1900000000\n", "DEF456;1900000000000\n"]
    stats = ImportStats()
    entries = list(parse_agency_csv(lines, stats))
    assert [(e.plate, e.expires_at) for e in entries] == [("DEF456", 1_900_000_000_000)]
    assert rejected_lines(stats) == {2: "bad_date"}
    assert "epoch seconds" in stats.samples[0].detail


def test_formats_by_cli_name() -> None:
    assert set(FORMATS) == {"ncic", "ccic", "ncmec", "csv"}
    assert get_format("NCIC").source is HotlistSource.NCIC and get_format("ncic").mode == "replace"
    assert get_format("ncmec").mode == "upsert" and get_format("csv").source is HotlistSource.LOCAL
    with pytest.raises(ValueError, match="unknown hotlist format"):
        get_format("fbi")


def test_importers_yield_valid_entries() -> None:
    """NCIC skips pydantic's validation for speed: its entries must still be valid."""
    for entry in parse_ncic(NCIC_FILE, ImportStats()):
        assert HotlistEntry.model_validate(entry.model_dump()) == entry
