"""Observers: where cache events go."""
