"""The HTTP edge: what happens to a connection and a request before Django sees it."""
