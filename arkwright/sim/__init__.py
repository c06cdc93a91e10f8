"""The digital twin: drives the scheduler core with a virtual clock from a trace."""
