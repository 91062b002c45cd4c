"""Tests of fastapi_cachekit/observers/ (Prometheus, OpenTelemetry) and the /metrics route."""
