"""Artifact rows: ``JobArtifact`` records where each stored output lives (the stores
themselves are ``voxhelm.storage``)."""
