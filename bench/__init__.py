"""`make bench`: the product's promise in figures, measured against the real stack on loopback."""
