"""Driving Delve: ``rpc`` (the JSON-RPC client), ``server`` (dlv's lifecycle), ``tracer``."""
