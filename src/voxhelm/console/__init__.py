"""The operator console: sign-in, submissions, job list, transcript pages (served at ``/``)."""
