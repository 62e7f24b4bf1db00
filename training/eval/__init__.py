"""Evaluation: shortcut gates, calibration, ensembles, scoring, anchors and figures.

Metrics themselves live in :mod:`dhs_gen.stats.metrics` (one definition for the whole project);
intervals in :mod:`dhs_gen.stats.bootstrap`.
"""
