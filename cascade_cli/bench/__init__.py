"""Benchmarks: a pure statistics core (`stats`) and, in later releases, the load generators."""
