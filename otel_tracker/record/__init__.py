"""The writing side: a run and its steps as OpenTelemetry spans, the manifest
document they fill, the run's telemetry and live progress, its signal handling,
and a child's join of its launcher's run. It never imports the reading side
(``history``, ``analysis``, ``cli``): what it needs from there (a pipeline's
history, the end-of-run report) the composition root, :mod:`otel_tracker.api`,
hands it.
"""
