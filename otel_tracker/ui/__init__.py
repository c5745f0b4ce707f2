"""``otel-tracker ui``: a live, read-only web view of the runs root.

A client of the read side (history, analysis) like the CLI, never of the writer:
:mod:`.server` (aiohttp: pages, JSON, one WebSocket), :mod:`.hub` (the rows,
telemetry and logs shared by every page), :mod:`.watch` (one watcher of the root),
:mod:`.telemetry` and :mod:`.downsample` (charts), :mod:`.files` (what may be
served), :mod:`.views` (what the pages show). The ``ui`` extra installs aiohttp and
watchfiles; nothing here is imported before the command runs.
"""
