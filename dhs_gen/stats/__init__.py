"""Statistics shared by the completeness, proxy and evaluation stages."""
