"""`cascade monitor` and the dashboard of `cascade serve`: one snapshot of Redis, the hub and the
Venice bridge per refresh.

Pure parts: `series` (time series, rates, sparklines), `promtext` (Prometheus text -> samples),
`panels` (readings -> the JSON-ready panel of each source, its status and the exit code).
I/O parts: `sources` (read each source with a deadline; `Monitor.snapshot()`), `render` (rich
renderables) and `tui` (the full-screen live view).
"""
