"""cfg-tui's library: flow matching with classifier-free guidance on a U-Net.

One small module per concept: ``schedules`` and ``path`` (the probability path),
``unet`` (the network), ``guidance`` and ``solvers`` and ``sampling`` (generation),
``trainer`` and ``data`` (learning), ``checkpoint``, ``images`` and ``files`` (I/O).
Nothing here imports Textual or Rich.
"""
