"""The results database, by job: tables, session (engine and migrations), common (upserts, UTC),
recording (files), verdicts (classification results), results (reading and counting), labels (analysts)."""
