"""The command line (Typer) and the terminal app (Textual): thin layers over ``core``."""
