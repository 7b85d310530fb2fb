"""The development server of `make run`: the app's HTTP routes through
Chalice's local API Gateway and its WebSocket handlers through an API
Gateway-shaped WebSocket API, on one port, without a reloader. Not part of the
Lambda package (Chalice packages only app.py and chalicelib/)."""
