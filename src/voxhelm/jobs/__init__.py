"""Batch jobs: durable, idempotent transcription jobs run by Django Tasks workers."""
