"""AI suggestions: the Celery app, its tasks and the providers behind one interface."""
