"""The Redis/Bull protocol layer: connections, pub/sub, Lua loading, script calls, keys, wire."""
