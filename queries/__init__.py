"""Read side, reading half: plain functions over the read tables that return plain data."""
