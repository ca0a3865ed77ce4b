"""Driving Delve, one module per job (standard library only, no pandas):

| module | job |
| --- | --- |
| ``api`` | Delve's wire types (``service/api/types.go``) and the lazy view of a stop |
| ``rpc`` | the JSON-RPC transport and one typed method per Delve RPC |
| ``launch`` | starting dlv (or connecting to one), version checks, why an attach failed |
| ``server`` | the running session that keeps a target going, one per target |
| ``tracer`` | the tracepoint loop behind ``%dlvtrace`` |
"""
