"""gunicorn-only parts: the worker class and what the master says at start-up. App code
never imports this package."""
