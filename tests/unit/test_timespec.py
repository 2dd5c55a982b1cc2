"""Slurm's time/memory syntaxes: what clients send (--time, --mem, -S) and parse back."""

import datetime as dt
import time

import pytest

from batch_backend.timespec import (
    format_datetime, format_duration, format_hms, format_limit, format_mem, parse_datetime,
    parse_mem, parse_time_limit,
)


@pytest.mark.parametrize("text, minutes", [
    ("5", 5), ("90", 90), ("0", 0), ("10:00", 10), ("0:30", 1), ("1:01", 2),
    ("00:30:00", 30), ("1:00:00", 60), ("1:00:01", 61), ("2-0", 2880), ("1-2", 1560),
    ("1-2:3", 1563), ("1-2:3:4", 1564), (" 7 ", 7),
    ("UNLIMITED", None), ("infinite", None), ("-1", None),
])
def test_parse_time_limit_accepts_slurm_forms(text, minutes):
    assert parse_time_limit(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "1-", "-5", "1.5", "1-2:3:4:5", "+5", "5m"])
def test_parse_time_limit_rejects_garbage(text):
    with pytest.raises(ValueError) as info:
        parse_time_limit(text)
    assert str(info.value) == "Invalid time limit specification"


@pytest.mark.parametrize("seconds, text", [
    (0, "0:00"), (5, "0:05"), (59.9, "0:59"), (61, "1:01"), (3599, "59:59"), (3600, "1:00:00"),
    (36000, "10:00:00"), (86400, "1-00:00:00"), (90061, "1-01:01:01"), (-3, "0:00"),
])
def test_format_duration_is_squeue_time_style(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("minutes, text", [
    (None, "UNLIMITED"), (5, "5:00"), (60, "1:00:00"), (90, "1:30:00"), (2880, "2-00:00:00"),
])
def test_format_limit_is_squeue_timelimit_style(minutes, text):
    assert format_limit(minutes) == text


@pytest.mark.parametrize("seconds, text", [
    (None, "UNLIMITED"), (0, "00:00:00"), (1, "00:00:01"), (600, "00:10:00"),
    (86399, "23:59:59"), (86400, "1-00:00:00"), (90061, "1-01:01:01"),
])
def test_format_hms_is_sacct_elapsed_style(seconds, text):
    assert format_hms(seconds) == text


@pytest.mark.parametrize("text, mb", [
    ("1K", 1), ("1025K", 2), ("2048MB", 2048), ("4GB", 4096), ("954M", 954), ("1.5G", 1536),
    ("1.5g", 1536), ("0.1", 1), ("100", 100), ("2T", 2 * 1024 * 1024), ("1kb", 1), ("0", 0),
    (".5G", 512),
])
def test_parse_mem_rounds_up_to_whole_mb(text, mb):
    assert parse_mem(text) == mb


@pytest.mark.parametrize("text, message", [
    ("abc", "invalid memory size 'abc'"), ("", "invalid memory size ''"),
    ("KB", "invalid memory size 'KB'"), ("1.2.3G", "invalid memory size '1.2.3G'"),
    ("4XB", "invalid memory size '4XB'"), ("-1", "negative memory size '-1'"),
    ("-2G", "negative memory size '-2G'"),
])
def test_parse_mem_rejects_garbage_and_negatives(text, message):
    with pytest.raises(ValueError) as info:
        parse_mem(text)
    assert str(info.value) == message


@pytest.mark.parametrize("mb, text", [
    (4096, "4G"), (954, "954M"), (1536, "1536M"), (1024 * 1024, "1T"), (0, "0"), (None, ""),
])
def test_format_mem_uses_largest_exact_unit(mb, text):
    assert format_mem(mb) == text


NOW = time.mktime((2026, 11, 22, 16, 0, 48, 0, 0, -1))


def local(*fields):
    return dt.datetime(*fields).timestamp()


@pytest.mark.parametrize("text, expected", [
    ("now", NOW),
    ("NOW", NOW),
    ("now-30days", NOW - 30 * 86400),
    ("now+1hour", NOW + 3600),
    ("now-2hours", NOW - 7200),
    ("now+60", NOW + 60),
    ("now+5minutes", NOW + 300),
    ("now+1week", NOW + 604800),
    ("now-10seconds", NOW - 10),
    ("2026-11-20", local(2026, 11, 20)),
    ("2026-11-20T10:05", local(2026, 11, 20, 10, 5)),
    ("2026-11-20T10:05:07", local(2026, 11, 20, 10, 5, 7)),
    ("17:00", local(2026, 11, 22, 17, 0)),         # still ahead today
    ("15:00", local(2026, 11, 23, 15, 0)),         # passed: tomorrow
    ("16:30:15", local(2026, 11, 22, 16, 30, 15)),
    ("today", local(2026, 11, 22)),
    ("tomorrow", local(2026, 11, 23)),
    ("midnight", local(2026, 11, 23)),
    ("11/23", local(2026, 11, 23)),
])
def test_parse_datetime_accepts_sacct_and_begin_forms(text, expected):
    assert parse_datetime(text, now=NOW) == expected


@pytest.mark.parametrize("text", [
    "", "garbage", "now+", "nowx", "now+5lightyears", "now*3", "2026-13-01", "2026-02-30",
    "25:00", "12:60", "2026-11-20T", "2026-11-20T1", "26-11-20", "1/2/3/4",
])
def test_parse_datetime_rejects_garbage(text):
    with pytest.raises(ValueError) as info:
        parse_datetime(text, now=NOW)
    assert str(info.value) == f"Invalid time specification: {text}"


def test_parse_datetime_defaults_now_to_current_time():
    before = time.time()
    assert before - 1 <= parse_datetime("now") <= time.time() + 1


def test_format_datetime_is_local_iso_seconds_or_unknown():
    assert format_datetime(local(2026, 11, 22, 16, 0, 48)) == "2026-11-22T16:00:48"
    assert format_datetime(local(2026, 11, 22, 16, 0, 48) + 0.9) == "2026-11-22T16:00:48"
    assert format_datetime(None) == "Unknown"
    assert format_datetime(0) == "Unknown"


def test_format_datetime_round_trips_parse_datetime():
    assert format_datetime(parse_datetime("2026-01-02T03:04:05")) == "2026-01-02T03:04:05"
