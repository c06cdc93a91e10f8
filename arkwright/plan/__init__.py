"""Capacity planning: which GPUs, where, meet each programme's service at least cost."""
