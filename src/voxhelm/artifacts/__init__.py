"""Artifact storage: the store interface, the filesystem store, keys, and artifact rows."""
