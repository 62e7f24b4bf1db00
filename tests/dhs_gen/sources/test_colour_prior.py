"""One source-colour prior: the sersic, sersic_clumps and cosmos generators draw from priors.py."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

import dhs_gen.sources as sources_pkg
from dhs_gen.sources import get_source
from dhs_gen.sources.priors import SOURCE_G_MINUS_R, SOURCE_R_MINUS_Z, source_colours


def _colour_literals(path: Path) -> list[int]:
    """Lines where a module spells the prior's (mean, sigma) numbers as a literal tuple."""
    wanted = {tuple(SOURCE_G_MINUS_R), tuple(SOURCE_R_MINUS_Z)}
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
            if tuple(e.value for e in node.elts) in wanted:
                lines.append(node.lineno)
    return lines


def test_colour_numbers_are_defined_once():
    folder = Path(sources_pkg.__file__).parent
    found = {p.name: _colour_literals(p) for p in sorted(folder.glob("*.py")) if p.name != "priors.py"}
    assert {k: v for k, v in found.items() if v} == {}


def test_cosmos_falls_back_to_the_shared_prior():
    rng = np.random.default_rng(11)
    cosmos = get_source("cosmos")
    u = rng.random((200, cosmos.n_uniforms))
    batch = cosmos.from_uniforms(u, theta_E=np.full(200, 1.2))
    prior_g_r, _ = source_colours(u[:, 2], u[:, 3])
    no_photometry = ~np.isfinite(cosmos.bank.mag_g - cosmos.bank.mag_r)
    rows = np.flatnonzero(np.isin(batch["cosmos_ident"], cosmos.bank.ident[no_photometry]))
    assert rows.size  # the paltas galaxies carry no HSC g: their colours come from the prior
    np.testing.assert_array_equal(batch["g_r"][rows], prior_g_r[rows])
