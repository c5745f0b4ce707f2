"""The directory ``otel-tracker run --auto`` puts first on a child's ``PYTHONPATH``.

Python imports the ``sitecustomize`` module in it at start-up (as
``opentelemetry-instrument`` does); see :mod:`otel_tracker.launch.auto`.
"""
