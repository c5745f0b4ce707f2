"""Analysis over manifests (the read side): key figures, rules and their findings,
recommendations, baselines, and the run report (``summary``, ``show``, ``export`` and
the summary files a run leaves in its directory)."""
