"""Speech-to-text engines behind one interface, with model aliases and fallback."""
