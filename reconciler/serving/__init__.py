"""Serving checks (not the reference backend in the repository's serving/): which endpoints to ask
and how to judge an answer (verify), polling them concurrently (poller), and notifications of
applies and failed verifications (notify)."""
