"""Classification: the batch runtime shared by both modes, and the Celery app and tasks."""
