"""pyspark's assertDataFrameEqual under numpy 2.

pyspark 3.5's ``pyspark.testing`` imports ``pyspark.pandas``, which still references ``np.NaN``
(removed in numpy 2.0); the alias is restored on the loaded numpy before importing it (tests only).
"""
from __future__ import annotations

import importlib
import sys


def assert_df_equal(actual, expected, **kwargs):
    numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
    if not hasattr(numpy, "NaN"):
        numpy.NaN = numpy.nan
    from pyspark.testing import assertDataFrameEqual

    assertDataFrameEqual(actual, expected, **kwargs)
