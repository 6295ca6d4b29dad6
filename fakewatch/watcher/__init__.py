"""Watching folders: the watchdog observer (events, catch-up, rescans) and its stability decision; what it
finds goes through :mod:`fakewatch.intake` like a scan's files."""
