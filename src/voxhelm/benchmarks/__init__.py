"""``voxhelm bench``: run the benchmark scripts under ``bench/`` and write a markdown report.

Only the ``bench`` command imports this package; ``serve`` and the other commands never do.
"""
