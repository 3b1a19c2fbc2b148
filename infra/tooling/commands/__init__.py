"""`todo-infra` commands that live outside `cli.py`, each adding itself via `register(app)`."""
