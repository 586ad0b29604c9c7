"""``voxhelm-remote-worker``: leases transcription jobs from a Voxhelm server over HTTP, runs
them with the same core steps as the server, and uploads the artifacts to the shared store.

It never imports Django: only the core, ``voxhelm.workers.protocol`` and
``voxhelm.workers.capabilities``.
"""
