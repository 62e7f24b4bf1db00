"""Catalogue stages: lenscat positives, the negative pool, stratified sampling, HEALPix splits,
compaction, the training manifest and the pre-training data gates.

Plain functions over numpy / pyarrow / pandas; the Spark twins (``*_spark``) import pyspark
inside the function. The Spark jobs in ``jobs/`` are thin wrappers around these.
"""
