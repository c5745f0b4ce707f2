"""Performance smoke tests: scenario files, tracked scenario runs, baselines, reports."""
