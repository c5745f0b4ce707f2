"""Zero-code integrations: what a script already reports becomes the run's structure.

* :mod:`~otel_tracker.integrations.tqdm`: tqdm bars as steps and progress.
* :mod:`~otel_tracker.integrations.lightning` (and ``pytorch_lightning``),
  :mod:`~otel_tracker.integrations.transformers`, :mod:`~otel_tracker.integrations.keras`:
  a callback per framework, each importing its framework when imported itself.

``otel-tracker run --auto`` attaches all of them as the program imports their
packages (:mod:`~otel_tracker.integrations.auto`, through the post-import hooks of
:mod:`~otel_tracker.integrations.hooks`). Nothing here is imported by ``otel_tracker``
itself.
"""
