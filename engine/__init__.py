"""batchdeck's headless engine: readers, caps, providers, the checkpoint log and the CLI."""
