"""Read side, writing half: projectors that turn the event log into read tables."""
