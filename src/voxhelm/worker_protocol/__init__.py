"""The remote pull-worker protocol, shared by the server and ``voxhelm-remote-worker``.

``messages`` (every request and response body), ``limits`` (what a worker may send),
``capabilities`` (which jobs a worker may claim), ``manifest`` (checking a completion's
artifacts) and ``metadata`` (what of a worker's result metadata reaches producers).
Framework-free; the Django side (the ``Worker`` registry, leases, completion, views) is the
``workers`` app.
"""
