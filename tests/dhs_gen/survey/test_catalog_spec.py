"""One CatalogSpec carries the seven mock-sky options shared by plan_catalog, catalog_segment
and mock_catalog (they used to repeat them); keyword options still build one."""
from __future__ import annotations

import pyarrow as pa
import pytest

from dhs_gen.survey.catalog import CatalogSpec, catalog_segment, catalog_spec, mock_catalog, plan_catalog


def test_spec_and_keyword_options_give_the_same_rows():
    spec = CatalogSpec(seed=3, include_lenses=True, lens_patches=5)
    by_spec = mock_catalog(2500, spec)
    by_kwargs = mock_catalog(2500, seed=3, lens_patches=5)
    assert by_spec.equals(by_kwargs)
    segments = pa.concat_tables([catalog_segment(seg, spec) for seg in plan_catalog(2500, spec)])
    assert segments.combine_chunks().equals(by_spec)


def test_spec_or_options_not_both_and_unknown_options_named():
    with pytest.raises(TypeError, match="not both"):
        catalog_spec(CatalogSpec(), seed=1)
    with pytest.raises(TypeError, match="lens_patchs"):
        mock_catalog(10, lens_patchs=3)
    assert catalog_spec(seed=2).lenses is not None and CatalogSpec(include_lenses=False).patches.size == 0
