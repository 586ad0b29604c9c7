"""The studio app: a finished transcript's corrections, and the speaker library."""
