"""The Engine API front door: Docker's own clients (CLI, docker-py) through Berth, images only."""
