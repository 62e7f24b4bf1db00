"""Training package: torchrun lens finders on the pipeline's Parquet."""
