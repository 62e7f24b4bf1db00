"""Injection jobs' core: phase 4a manifests, phase 4c stamps and metrics, phase 4d proxy completeness.

Public API: :func:`build_manifest` / :class:`ManifestConfig` (4a), :func:`mix_variants` (uber
mixer), :func:`inject_batch` / :class:`InjectConfig` (4c), :func:`proxy_completeness` /
:class:`ProxyConfig` (4d). Physics (lens models, sources, rendering) lives in dhs_gen.lensing.
"""
from __future__ import annotations

from dhs_gen.injection.inject import InjectConfig, inject_batch
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.injection.mixer import VariantSpec, mix_variants
from dhs_gen.injection.proxy_completeness import ProxyConfig, proxy_completeness

__all__ = ["InjectConfig", "ManifestConfig", "ProxyConfig", "VariantSpec", "build_manifest", "inject_batch",
           "mix_variants", "proxy_completeness"]
