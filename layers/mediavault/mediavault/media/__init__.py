"""Media candidates, ranking, content sniffing and storage keys (pure functions)."""
