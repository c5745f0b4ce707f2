"""The reading side: runs as their files say they are (``store``), with the status
a dead or stuck process really has (``run_status``), their progress now
(``progress_view``) and what a dead run's telemetry says (``telemetry_tail``).
It never imports the writing side or the OpenTelemetry SDK: read commands start
fast.
"""
