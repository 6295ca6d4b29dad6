"""Finding files: filters and stability decisions, intake into the database, the folder observer."""
