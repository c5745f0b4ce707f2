"""The reference imitation-learning pipeline as a plain script.

    python examples/imitation_pipeline.py [--full] [--seed N] [--root DIR]

The code lives in ``otel_tracker/examples/imitation.py`` so that the installed
``otel-tracker demo`` command can run it too.
"""

from otel_tracker.examples.imitation import main

if __name__ == "__main__":
    raise SystemExit(main())
