"""Side-by-side benchmarks of fastapi-cachekit, its peers and the floors."""
