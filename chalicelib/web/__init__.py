"""The HTTP edge, the only part of the app that knows HTTP or Chalice:
edge.py registers routes and turns each request into a use case's call,
envelope.py turns results and domain errors into answers, and
requestlog.py writes one log line (with its metrics) per request."""
from .edge import App, Call, Edge

__all__ = ["App", "Call", "Edge"]
