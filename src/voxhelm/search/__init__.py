"""The search app: full-text search over a producer's transcripts, segment by segment."""
