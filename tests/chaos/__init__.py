"""The chaos suite: real uvicorn workers and redis-server processes under faults (issue 11)."""
