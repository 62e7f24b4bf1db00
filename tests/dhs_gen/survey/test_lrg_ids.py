"""One galaxy, one id: an LRG host carries the galaxy_id the mock catalogue (and its negatives) give it."""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from dhs_gen.catalog.tractor import galaxy_ids
from dhs_gen.selection.config import ProvenanceConfig
from dhs_gen.selection.provenance import ProvenanceError, verify_provenance
from dhs_gen.survey.catalog import mock_catalog
from dhs_gen.survey.hosts import load_lrg_sample
from dhs_gen.survey.sky import LRG_OBJID_OFFSET, SATELLITES_MAX, lrg_galaxy_ids


@pytest.fixture(scope="module")
def catalogue_lrgs():
    cat = mock_catalog(3000, seed=0, lens_patches=40)
    lrgs = cat.filter(pc.equal(cat["mock_population"], "lrg")).to_pandas()
    assert len(lrgs) >= 3
    return lrgs


def test_host_id_is_the_catalogue_id_of_the_same_galaxy(catalogue_lrgs):
    sample = load_lrg_sample()
    index = (catalogue_lrgs["objid"].to_numpy(np.int64) - LRG_OBJID_OFFSET) // (SATELLITES_MAX + 1)
    # the catalogue row is that LRG: same position
    np.testing.assert_allclose(sample["ra"].to_numpy()[index], catalogue_lrgs["ra"].to_numpy())
    hosts = lrg_galaxy_ids(index, sample["ra"].to_numpy()[index], sample["dec"].to_numpy()[index])
    negatives = galaxy_ids(catalogue_lrgs["brickname"].to_numpy(), catalogue_lrgs["objid"].to_numpy())
    assert list(hosts) == list(negatives)


def test_provenance_refuses_a_negative_that_was_a_training_host(catalogue_lrgs, tmp_path):
    import pyarrow as pa

    from dhs_gen.storage import write_parquet

    sample = load_lrg_sample()
    index = (catalogue_lrgs["objid"].to_numpy(np.int64) - LRG_OBJID_OFFSET) // (SATELLITES_MAX + 1)
    trained_hosts = lrg_galaxy_ids(index[:1], sample["ra"].to_numpy()[index[:1]], sample["dec"].to_numpy()[index[:1]])
    manifest = str(tmp_path / "train.parquet")
    write_parquet(pa.table({"stamp_ref": ["inj-0"], "host_id": list(trained_hosts)}), manifest)
    cfg = ProvenanceConfig(models=[{"model_id": "m", "training_manifest": manifest}])
    negatives = galaxy_ids(catalogue_lrgs["brickname"].to_numpy(), catalogue_lrgs["objid"].to_numpy())
    with pytest.raises(ProvenanceError, match="negatives that set its"):
        verify_provenance(["m"], cfg, ["sel-0"], ["other-host"], negatives)
