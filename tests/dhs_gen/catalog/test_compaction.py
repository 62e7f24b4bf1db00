import pytest

from dhs_gen.catalog.compaction import plan_file_count


def test_plan_file_count():
    mb = 1024 * 1024
    assert plan_file_count(0, 128) == 1
    assert plan_file_count(128 * mb, 128) == 1
    assert plan_file_count(128 * mb + 1, 128) == 2
    assert plan_file_count(10_000 * mb, 1, max_files=50) == 50
    with pytest.raises(ValueError, match="target_file_mb"):
        plan_file_count(10, 0)
