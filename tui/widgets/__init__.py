"""Widgets of batchdeck's screens; each reads a ``RunModel`` (or its store) and nothing else."""
