"""The in-memory Redis-compatible server (Redis 7.0 behaviour, RESP2 and RESP3).

protocol (sans-I/O codec) -> store (keyspace) -> commands/ (one module per group) -> core
(engine: dispatch, transactions, blocking, pub/sub) -> server (asyncio TCP). Run it with
`python -m cascade_cli.resp [redis.conf] [--port 6379 ...]`, options as redis-server takes them.
"""
