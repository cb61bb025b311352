"""Serving: the HTTP service and its metrics."""
