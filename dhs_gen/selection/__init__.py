"""Selection function: injection-recovery completeness, the observability map, the realism audit.

Modules: ``config`` (the YAML models), ``binning`` (axes and bin indices), ``thresholds``
(score cut at a target FPR on negatives), ``completeness`` (per-batch counts, reduction,
Wilson + HEALPix-region bootstrap), ``provenance`` (the frozen model never saw the selection
set), ``observability`` (theta_E <-> sigma_v, M(<theta_E)), ``realism`` (probe AUC of real
lenses vs injections), ``figures`` and ``cli`` (``dhs selection-function``).
"""
