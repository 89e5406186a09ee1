from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures
