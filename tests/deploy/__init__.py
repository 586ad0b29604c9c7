"""Deployment artifacts built and run for real: image, compose, add-on, systemd units."""
