"""``voxhelm-remote-worker``: leases transcription jobs from a Voxhelm server over HTTP, runs
them with the same core steps as the server, and uploads the artifacts to the shared store.

It never imports Django: only the core, the protocol of ``voxhelm.worker_protocol`` and the
stores of ``voxhelm.storage`` among it.
"""
