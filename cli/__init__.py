"""Command-line flags and YAML recipes of the entry points (above the trainer: engine never imports this)."""
