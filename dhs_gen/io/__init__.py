"""Readers and writers for stamps, cutouts and the earlier pipeline's datasets."""
