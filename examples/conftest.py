"""The kit's pytest plugin, loaded from this checkout: an app that installs the package gets
it through the `pytest11` entry point, which this repository turns off (see pyproject.toml)."""

pytest_plugins = ("fastapi_cachekit.testing",)
