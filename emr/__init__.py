"""EMR launcher: presets, pure request builders, submit/wait/log layer, packaging, S3 sync."""
