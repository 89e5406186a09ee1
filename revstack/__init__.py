"""revstack."""
