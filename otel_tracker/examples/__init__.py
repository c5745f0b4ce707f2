"""Reference pipelines shipped with otel-tracker (``otel-tracker demo``)."""
