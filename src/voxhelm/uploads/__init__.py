"""Staged uploads: media a producer stores first and then names in a batch job."""
