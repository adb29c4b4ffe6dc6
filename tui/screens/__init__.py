"""batchdeck's screens: each composes widgets and owns the timers and keys of one task."""
