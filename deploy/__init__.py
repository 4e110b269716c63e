"""Deployment files (docker-compose.yml's companions) and `python3 -m deploy.env_file`."""
