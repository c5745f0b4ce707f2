"""The files both sides share, and nothing else: where a run's files live and how
they are named (``paths``), written atomically (``atomic``) and refreshed by
another process without going back in time (``heartbeat``), the joined children's
part files (``parts``), the run lock that proves a process alive (``liveness``),
the bounded no-follow read of a JSON file (``jsonfile``) and the schema's type
checks (``shape``). It imports neither the writing side (``record``,
``exporters``, ``sampling``) nor the reading side (``history``, ``analysis``).
"""
