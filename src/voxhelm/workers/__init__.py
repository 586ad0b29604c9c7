"""Remote pull workers, the server's side: the ``/v1/internal/`` views, leases, completion,
and the ``Worker`` registry.

The protocol itself (bodies, limits, capability matching, the manifest and metadata checks)
is framework-free and shared with ``voxhelm-remote-worker``: ``voxhelm.worker_protocol``.
"""
