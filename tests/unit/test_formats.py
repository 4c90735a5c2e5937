"""Formats written once and used everywhere: times, JSON lines, Hub paths, digest-free
references and next-page links (no engine needed)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.domain.ndjson import json_line
from app.domain.references import hub_api_path, hub_familiar_path, without_digest
from app.domain.times import rfc3339
from app.errors import InvalidReference, ValidationFailed
from app.observability.logs import JsonFormatter
from app.registry.paging import next_link, next_page

DIGEST = "sha256:" + "a" * 64


# --- times ----------------------------------------------------------------------------------


def test_unix_seconds_are_written_in_utc_with_milliseconds_and_z():
    assert rfc3339(1_700_000_000.123456) == "2023-11-14T22:13:20.123Z"
    assert rfc3339(1_700_000_000) == "2023-11-14T22:13:20.000Z"


def test_milliseconds_are_truncated_not_rounded():
    assert rfc3339(1_700_000_000.9999) == "2023-11-14T22:13:20.999Z"


def test_none_stays_none_for_times_not_reached():
    assert rfc3339(None) is None


def test_datetimes_with_an_offset_are_converted_to_utc():
    paris = datetime(2026, 1, 31, 13, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=1)))
    assert rfc3339(paris) == "2026-01-31T12:00:00.250Z"
    assert rfc3339(datetime(2026, 1, 31, 12, 0, tzinfo=UTC)) == "2026-01-31T12:00:00.000Z"


def test_auto_precision_keeps_whole_seconds_whole_as_the_engine_listing_shows_them():
    assert rfc3339(1_700_000_000, "auto") == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000.5, "auto") == "2023-11-14T22:13:20.500000Z"
    assert rfc3339(1_700_000_000.5, "seconds") == "2023-11-14T22:13:20Z"


def test_times_sort_as_text_in_time_order():
    stamps = [rfc3339(1_700_000_000 + step / 7) for step in range(50)]
    assert stamps == sorted(stamps)


def test_log_lines_carry_the_same_time_format():
    record = logging.LogRecord("berth.test", logging.INFO, __file__, 1, "hello", None, None)
    record.created, record.msecs = 1_700_000_000.042, 42.0
    line = json.loads(JsonFormatter().format(record))
    assert line["time"] == "2023-11-14T22:13:20.042Z" == rfc3339(1_700_000_000.042)


# --- JSON lines -----------------------------------------------------------------------------


def test_json_line_is_compact_utf8_json_ending_in_one_newline():
    line = json_line({"status": "Pulling", "layer": "abc", "current": 1, "total": None})
    assert line == b'{"status":"Pulling","layer":"abc","current":1,"total":null}\n'
    assert json.loads(line) == {"status": "Pulling", "layer": "abc", "current": 1, "total": None}


def test_json_line_escapes_newlines_inside_values_so_one_object_stays_one_line():
    line = json_line({"error": {"detail": "first\nsecond"}})
    assert line.count(b"\n") == 1 and line.endswith(b"\n")


def test_json_line_default_writes_what_json_has_no_form_for():
    moment = datetime(2026, 1, 31, tzinfo=UTC)
    with pytest.raises(TypeError):
        json_line({"at": moment})
    assert json_line({"at": moment}, default=str) == b'{"at":"2026-01-31 00:00:00+00:00"}\n'


# --- Docker Hub paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("busybox", "library/busybox"),
        ("team/app", "team/app"),
        ("library/ubuntu", "library/ubuntu"),
    ],
)
def test_hub_official_images_live_in_library(path, api):
    assert hub_api_path(path) == api


@pytest.mark.parametrize(
    ("path", "familiar"),
    [
        ("library/busybox", "busybox"),
        ("library/team/app", "library/team/app"),
        ("team/app", "team/app"),
        ("library", "library"),
        ("librarything/app", "librarything/app"),
    ],
)
def test_hub_familiar_path_drops_only_the_official_namespace(path, familiar):
    assert hub_familiar_path(path) == familiar


def test_hub_paths_round_trip_for_official_images():
    assert hub_familiar_path(hub_api_path("redis")) == "redis"


# --- references that are written to ---------------------------------------------------------


def test_a_tag_or_a_bare_name_passes_and_is_parsed():
    ref = without_digest("127.0.0.1:5000/team/app:1.0", "no digest")
    assert (ref.domain, ref.path, ref.tag) == ("127.0.0.1:5000", "team/app", "1.0")
    assert without_digest("busybox", "no digest").tag is None


def test_a_digest_is_refused_with_the_callers_words_and_error():
    with pytest.raises(InvalidReference) as refused:
        without_digest(f"team/app@{DIGEST}", "Give a tag.")
    assert refused.value.detail == "Give a tag."
    assert refused.value.code == "INVALID_REFERENCE"
    with pytest.raises(ValidationFailed) as failed:
        without_digest(f"team/app:1@{DIGEST}", "Push a tag.", ValidationFailed)
    assert (failed.value.detail, failed.value.code) == ("Push a tag.", "VALIDATION_FAILED")


def test_a_malformed_reference_is_still_an_invalid_reference():
    with pytest.raises(InvalidReference) as refused:
        without_digest("Team/App", "unused", ValidationFailed)
    assert "lowercase" in refused.value.detail


# --- next-page links ------------------------------------------------------------------------


def test_next_page_links_carry_the_query_and_the_cursor():
    link, headers = next_page("/v1/registries/r:5000/repositories", {"q": "te*", "n": 2}, "b/x")
    assert link == "/v1/registries/r:5000/repositories?q=te%2A&n=2&last=b%2Fx"
    assert headers == {"Link": f'<{link}>; rel="next"'}


def test_next_page_leaves_out_empty_parameters():
    link, _ = next_page("/v1/x", {"q": None, "n": 5, "empty": ""}, "a")
    assert link == "/v1/x?n=5&last=a"


def test_the_last_page_has_no_link_and_no_header():
    assert next_page("/v1/x", {"n": 5}, None) == (None, {})


def test_next_link_reads_back_what_next_page_writes_and_what_registries_send():
    link, headers = next_page("/v1/x", {"n": 5}, "a")
    assert next_link(headers["Link"]) == link
    assert next_link("</v2/_catalog?last=b&n=2>; rel=next") == "/v2/_catalog?last=b&n=2"
    assert next_link('</v2/x>; rel="prev"') is None
    assert next_link(None) is None and next_link("") is None
