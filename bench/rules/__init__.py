"""Rule engine benchmark and the per-reading reference engine (the oracle)."""
