"""cfg-tui's library: flow matching with classifier-free guidance on a U-Net, and a run's life.

The method, one small module per concept:
  ``schedules``, ``path``            the probability path x_t = α_t z + β_t ε and its fields
  ``unet``                           the network (the lab's MNISTUNet, configurable)
  ``guidance``, ``solvers``, ``sampling``   guided velocity, ODE/SDE steps, labels → images
  ``trainer``                        the CFG training objective and loop
  ``distributed``                    data-parallel training over several processes
  ``data/``                          MNIST and Fashion-MNIST: sources, cached preprocessing, batches
  ``configs``, ``choices``           the U-Net's and the training's settings; the names of solvers,
                                     grids, presets: no torch there, so the command line starts fast
A run's life (``train.py``-style glue lives in ``tui/commands``, not here):
  ``presets``, ``settings``          named starting points; what a user asks, checked once
  ``run_files``, ``runs``            the typed config.json/status.json; the run directory
  ``session``, ``lifecycle``         one training session written to a run; create, resume, train, stop
Around them:
  ``checkpoint``, ``files``, ``images``, ``assets``   safetensors, atomic writes, figures, bundled files
  ``metrics``, ``statistics``, ``evaluation``, ``damage``   the yardstick: classifier, distances with
                                     spreads, evaluation rows and ``eval check``
  ``quick_eval``                     the yardstick on a small fixed set, every few steps of a run
  ``bench``                          the lab's loops, for side-by-side benchmarks
Nothing here imports Textual or Rich (a test checks it).
"""
