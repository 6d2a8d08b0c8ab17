"""What the search and the report share about trials: each trial read back from disk with its damage listed
(records), the typed row of a ranking (rows), and the ranking by validation loss (ranking)."""
