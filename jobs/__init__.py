"""Thin PySpark entry points, one per EMR step: parse, build the session, call dhs_gen, write, summarise."""
