"""The development server of `make run`: the app's HTTP routes through
Chalice's local API Gateway on one port, without a reloader. Not part of the
Lambda package (Chalice packages only app.py and chalicelib/)."""
