"""The public time helpers: offset-less peer times read in the instance's zone, ISO-8601 times with
an offset (``+08:00``, ``+0800``, ``Z``) read by their offset, everything returned in UTC."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway import WIB, format_iso_time, format_peer_time, parse_iso_time, parse_peer_time, to_utc

WITA = ZoneInfo("Asia/Makassar")  # UTC+8
WIT = ZoneInfo("Asia/Jayapura")  # UTC+9
TEN_IN_WITA = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)  # 10:00 at UTC+8


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T10:00:00+08:00",
        "2026-11-29T10:00:00+0800",
        "2026-11-29 10:00:00+08:00",
        "2026-11-29T11:00:00+09:00",
        "2026-11-29T02:00:00Z",
        "2026-11-29T02:00:00z",
        "2026-11-29T02:00:00+00:00",
        "  2026-11-29T10:00+08:00 ",
    ],
)
def test_an_iso_time_with_an_offset_is_read_by_its_offset_whatever_the_instances_zone(text):
    for zone in (WIB, WITA, WIT, UTC):
        assert parse_iso_time(text, zone) == TEN_IN_WITA


def test_an_iso_time_keeps_its_fraction_of_a_second():
    assert parse_iso_time("2026-11-29T10:00:00.250+08:00", WIB) == TEN_IN_WITA.replace(microsecond=250000)


def test_an_iso_time_without_an_offset_is_read_in_the_instances_zone():
    assert parse_iso_time("2026-11-29T10:00:00", WITA) == TEN_IN_WITA
    assert parse_iso_time("2026-11-29T10:00:00", WIB) == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29",  # a date alone: not silently midnight
        "29-11-2026 10:00:00",
        "2026-11-29T25:00:00Z",
        "2026-11-29T10:00:00+25:00",
        "0001-01-01T00:00:00Z",  # a placeholder, not a complaint's time
        "",
        "kemarin sore",
    ],
)
def test_what_is_not_an_iso_time_is_a_value_error(text):
    with pytest.raises(ValueError) as caught:
        parse_iso_time(text, WIB)
    assert text.strip() == "" or text not in str(caught.value)  # the value is never repeated


def test_a_non_string_is_a_value_error():
    with pytest.raises(ValueError):
        parse_iso_time(None, WIB)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["2026-11-29T10:00:00+08:00", "2026-11-29T10:00:00+0800", "2026-11-29T02:00:00Z"])
def test_parse_peer_time_reads_an_offset_with_percent_z(text):
    assert parse_peer_time(text, "%Y-%m-%dT%H:%M:%S%z", WIB) == TEN_IN_WITA


def test_parse_peer_time_refuses_an_offset_its_format_does_not_have():
    with pytest.raises(ValueError):
        parse_peer_time("2026-11-29 10:00:00+08:00", "%Y-%m-%d %H:%M:%S", WIB)


def test_format_iso_time_writes_the_zones_offset():
    assert format_iso_time(TEN_IN_WITA, WITA) == "2026-11-29T10:00:00+08:00"
    assert format_iso_time(TEN_IN_WITA, WIB) == "2026-11-29T09:00:00+07:00"
    assert format_iso_time(TEN_IN_WITA, UTC) == "2026-11-29T02:00:00+00:00"
    assert format_iso_time(TEN_IN_WITA.replace(microsecond=250000), WIT, timespec="milliseconds") == (
        "2026-11-29T11:00:00.250+09:00"
    )
    naive = datetime(2026, 11, 29, 2, 0)  # taken as UTC, as everywhere in the gateway
    assert format_iso_time(naive, WITA) == "2026-11-29T10:00:00+08:00"


def test_written_and_read_back_is_the_same_instant():
    for zone in (WIB, WITA, WIT):
        assert parse_iso_time(format_iso_time(TEN_IN_WITA, zone), WIB) == TEN_IN_WITA
        assert parse_peer_time(
            format_peer_time(TEN_IN_WITA, "%Y-%m-%dT%H:%M:%S%z", zone), "%Y-%m-%dT%H:%M:%S%z", WIB
        ) == (TEN_IN_WITA)


def test_format_peer_time_with_percent_z_and_without():
    assert format_peer_time(TEN_IN_WITA, "%Y-%m-%d %H:%M:%S%z", WITA) == "2026-11-29 10:00:00+0800"
    assert format_peer_time(TEN_IN_WITA, "%Y-%m-%d %H:%M:%S", WITA) == "2026-11-29 10:00:00"


def test_to_utc_keeps_an_aware_times_offset():
    aware = datetime(2026, 11, 29, 10, 0, tzinfo=WITA)
    assert to_utc(aware, WIB) == TEN_IN_WITA


def _by_strptime(text: str, fmt: str) -> datetime | str:
    try:
        return to_utc(datetime.strptime(text.strip(), fmt), WIB)
    except (ValueError, OverflowError, UnicodeError):
        return "error"


def _by_parse_peer_time(text: str, fmt: str) -> datetime | str:
    try:
        return parse_peer_time(text, fmt, WIB)
    except ValueError:
        return "error"


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S"])
def test_the_short_ways_of_reading_a_time_give_what_strptime_gives(fmt):
    """A day or a time written in full is read by ``datetime.fromisoformat``, not strptime: the same
    time, or an error, for every text, malformed ones included."""
    rng = random.Random(20261130)
    texts = [
        "2026-11-30",
        "2024-02-29",
        "2023-02-29",
        "0001-01-01",
        "0000-01-01",
        "9999-12-31",
        "2026-13-01",
        "2026-00-10",
        "2026-01-32",
        "2026-1-05",
        " 2026-01-05 ",
        "2026-01-05T00:00:00",
        "20260105",
        "2026-01-05 00:00:00",
        "2026-01-05 23:59:59",
        "2026-01-05 24:00:00",
        "2026-01-05 23:60:00",
        "2026-01-05 23:59:60",
        "2026-01-05 7:05:03",
        "2026-01-05  07:05:03",
        "2026-01-05 07:05:03.5",
        "\u0662\u0660\u0662\u0666-01-05",
        "2026-01-05\x00",
        "",
        "2026-01-05\udc00",
        "+2026-01-05",
    ]
    alphabet = "0123456789- :T.\u0663x"
    for _ in range(30_000):
        day = f"{rng.randint(0, 10_000):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
        clock = f" {rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
        texts.append(day + (clock if rng.random() < 0.5 else ""))
        texts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(8, 20))))
    for text in texts:
        assert _by_parse_peer_time(text, fmt) == _by_strptime(text, fmt), repr(text)
