"""`metrics.child` is `labels()` remembered: the same child, so the counts land in one series."""
from __future__ import annotations

from switchyard.common import metrics


def test_child_is_the_labelled_series() -> None:
    series = metrics.child(metrics.HTTP_REQUESTS, "child_test_route", "200")
    assert series is metrics.HTTP_REQUESTS.labels("child_test_route", "200")
    assert metrics.child(metrics.HTTP_REQUESTS, "child_test_route", "200") is series
    before = series._value.get()
    metrics.child(metrics.HTTP_REQUESTS, "child_test_route", "200").inc()
    assert metrics.HTTP_REQUESTS.labels("child_test_route", "200")._value.get() == before + 1
    assert metrics.child(metrics.HTTP_REQUESTS, "child_test_route", "500") is not series
