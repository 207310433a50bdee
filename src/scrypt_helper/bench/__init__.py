"""Benchmarks: the engines alone and the service over HTTP; they print tables and write JSON."""
