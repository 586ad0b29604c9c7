"""Speaker diarization: who spoke when, aligned to transcript segments (framework-free)."""
