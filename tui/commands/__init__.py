"""One module per command group of ``cfg-tui``."""
