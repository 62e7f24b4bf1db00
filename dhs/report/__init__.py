"""The static HTML report: headline numbers, figures and what every number means."""
