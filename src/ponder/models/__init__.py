"""Model folders ponder makes itself (the tiny smoke-test model now; the embedded default later)."""
