"""Test configuration: the package's pytest plugin holds the shared fixtures (see perturb_core.testing)."""

pytest_plugins = ["perturb_core.testing.pytest_plugin"]
