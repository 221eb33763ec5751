"""``novelcraft.memory``: the progress a running summary is written at."""

from __future__ import annotations

from novelcraft.memory import summary_progress_after, summary_progress_before


def test_summary_progress():
    assert [summary_progress_before(i, 4) for i in range(4)] == [0, 25, 50, 75]
    assert [summary_progress_after(i, 4) for i in range(4)] == [25, 50, 75, 100]
    # half up, like the training records (Python's round() would give 12 and 62)
    assert [summary_progress_before(i, 8) for i in range(8)] == [0, 13, 25, 38, 50, 63, 75, 88]
