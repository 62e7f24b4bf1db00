"""pyspark's assertDataFrameEqual under numpy 2.

pyspark 3.5's ``pyspark.testing`` imports ``pyspark.pandas``, which still references ``np.NaN``
(removed in numpy 2.0); the alias is restored before importing it (tests only).
"""
from __future__ import annotations

import numpy as np


def assert_df_equal(actual, expected, **kwargs):
    if "NaN" not in np.__dict__:
        np.nan = np.nan
    from pyspark.testing import assertDataFrameEqual

    assertDataFrameEqual(actual, expected, **kwargs)
