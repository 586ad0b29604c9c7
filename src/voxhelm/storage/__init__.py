"""Artifact storage: the store interface, the filesystem and S3 stores, keys, checkpoints.

Framework-free: the server and ``voxhelm-remote-worker`` write through the same stores. The
rows that record an artifact (``JobArtifact``) are the ``artifacts`` app's.
"""
