"""`python -m tests.soak`: long crash, concurrency, fault and hostile-input runs (`make soak`)."""
