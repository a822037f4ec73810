"""Crash, concurrency and dependency-fault scenarios shared by the e2e tests and `make soak`."""
