"""The live control plane: the same scheduler core on the wall clock, behind an HTTP API."""
