"""batchdeck's Textual app: it drives the engine only through its public API and events."""
