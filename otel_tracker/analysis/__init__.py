"""Analysis over manifests: run reports (and, later, recommendations and baselines)."""
