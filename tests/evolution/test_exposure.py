"""The deterministic canary bucket and trial approval (reference §3.14.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsm_actors.core.evolution.exposure import EXPOSURE_BUCKETS, exposure_bucket, is_approved, within_traffic_share


@pytest.mark.parametrize(("task_id", "suggestion_id", "bucket"), [
    ("task-review", "sugg-1", 4483),
    ("task-1", "sugg-1", 1984),
    ("a", "b", 7904),
    ("", "", 8189),
])
def test_reference_bucket_values(task_id, suggestion_id, bucket):
    assert exposure_bucket(task_id, suggestion_id) == bucket


def test_separator_keeps_the_two_ids_apart():
    """Without the ':' byte, ("ab", "c") and ("a", "bc") would hash the same bytes."""
    assert exposure_bucket("ab", "c") != exposure_bucket("a", "bc")


def test_non_ascii_ids_hash_their_utf8_bytes():
    assert exposure_bucket("tâche", "s") == exposure_bucket("tâche", "s")
    assert 0 <= exposure_bucket("tâche", "s") < EXPOSURE_BUCKETS


@given(st.text(), st.text())
def test_bucket_is_in_range_and_stable(task_id, suggestion_id):
    bucket = exposure_bucket(task_id, suggestion_id)
    assert 0 <= bucket < EXPOSURE_BUCKETS
    assert exposure_bucket(task_id, suggestion_id) == bucket


@pytest.mark.parametrize(("bucket", "bp", "admitted"), [
    (0, None, False),          # no share: nothing without explicit approval
    (0, 0, False),             # a share of 0 admits nothing
    (999, 1_000, True),
    (1_000, 1_000, False),     # strictly below the share
    (9_999, 10_000, True),     # 10,000 basis points admit everything
    (9_999, 65_535, True),     # larger shares are capped at 10,000
])
def test_traffic_share(bucket, bp, admitted):
    assert within_traffic_share(bucket, bp) is admitted


@pytest.mark.parametrize(("metadata", "approved"), [
    ({}, False),
    ({"trial_approved": "true"}, True),
    ({"trial_approved": "sugg-1"}, True),
    ({"trial_approved": "sugg-2"}, False),
    ({"trial_approved": "True"}, False),
    ({"trial_approved": ""}, False),
])
def test_approval(metadata, approved):
    assert is_approved(metadata, "sugg-1") is approved
