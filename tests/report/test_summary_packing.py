"""The packed visible times of a stored summary, and the rank selection over their runs: the
same figures as sorting every value (the large-page path is forced with `SMALL = 0`)."""

from __future__ import annotations

import bisect
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebeacon.report import aggregate
from sitebeacon.report.aggregate import QUICK_MS, READ_MS, _page_times, median_of_runs, percentile
from sitebeacon.report.summary import decode, encode

# Whole milliseconds (packed as uint32), larger whole numbers (uint64) and fractions (double).
VALUES = st.one_of(
    st.integers(0, 120_000),
    st.integers(2**32, 2**40),
    st.floats(0, 1e6, allow_nan=False),
)
RUNS = st.lists(
    st.lists(st.integers(0, 120_000) | st.sampled_from([0.5, 9_999.5, 30_000])), max_size=8
)


@settings(max_examples=200, deadline=None)
@given(runs=RUNS, small=st.sampled_from([0, 3, 65_536]))
def test_page_times_match_sorting_everything(runs: list[list[float]], small: int) -> None:
    values = sorted(value for run in runs for value in run)
    want = (
        len(values),
        statistics.median(values) if values else None,
        percentile(values, 0.75),
        bisect.bisect_left(values, QUICK_MS),
        len(values) - bisect.bisect_left(values, READ_MS),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aggregate, "SMALL", small)
        assert _page_times([sorted(run) for run in runs]) == want
    assert median_of_runs([sorted(run) for run in runs]) == want[1]


@settings(max_examples=100, deadline=None)
@given(pages=st.dictionaries(st.text(max_size=5), st.lists(VALUES, max_size=6), max_size=4))
def test_packed_visible_times_round_trip(pages: dict[str, list[float]]) -> None:
    part = {"types": {"leave": 1}, "visible": {url: sorted(times) for url, times in pages.items()}}
    summary = decode(encode({"parts": {"h\x1f0": part}, "visits": {}}))
    got = summary["parts"]["h\x1f0"]
    assert {url: list(times) for url, times in got["visible"].items()} == part["visible"]
    assert list(got["all"]) == sorted(value for times in pages.values() for value in times)
    assert got["types"] == {"leave": 1}
