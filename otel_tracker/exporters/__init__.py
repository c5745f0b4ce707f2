"""OpenTelemetry extension points that write or mirror a run's telemetry."""
