"""The demo samples enough held-out negatives to resolve its largest FPR cut (>= 10 above the cut)."""
from __future__ import annotations

from dhs.stages.catalogue import DEMO_CONFIG as CATALOGUE_CONFIG
from dhs.stages.catalogue import DemoCatalogConfig
from dhs.stages.selection_function import DEMO_CONFIG as SELECTION_CONFIG
from dhs.stages.selection_function import DemoSelectionConfig
from dhs_gen.config import load_config
from dhs_gen.selection.thresholds import MIN_NEGATIVES_ABOVE, cut_rank


def test_demo_negatives_resolve_fpr_1e_2_and_not_1e_3():
    catalogue = load_config(DemoCatalogConfig, str(CATALOGUE_CONFIG))
    selection = load_config(DemoSelectionConfig, str(SELECTION_CONFIG))
    assert selection.negative_split is None  # every sampled negative is held out and sets the cut
    n = catalogue.catalog.sampling.target_total
    fprs = sorted(selection.selection.fprs, reverse=True)
    assert fprs == [0.01, 0.001]
    # failed cutouts and negatives that hosted training injections (~6% of the mock's sample are
    # host-sample LRGs) are not counted: the cut must stay resolved at 90% of the target
    assert cut_rank(fprs[0], int(0.90 * n)) >= MIN_NEGATIVES_ABOVE
    assert cut_rank(fprs[1], n) < MIN_NEGATIVES_ABOVE  # shown as unresolved, as it should be
