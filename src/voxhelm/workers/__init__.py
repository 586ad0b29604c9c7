"""Remote pull workers: the ``/v1/internal/`` protocol, leases, and the ``Worker`` registry.

``protocol``, ``capabilities``, ``manifest`` and ``metadata`` are framework-free (the
remote worker imports ``protocol`` and ``capabilities``); ``models``, ``leases``,
``completion`` and ``views`` are the Django side.
"""
