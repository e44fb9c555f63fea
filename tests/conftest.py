pytest_plugins = ["pytester"]

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def host():
    """The plugin host as the repository's suites see it (built-ins + envs, policies, plugins)."""
    from simgate.plugin_manager import Host

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return Host(project_plugins=["envs", "policies", "plugins.stuck"], autoload=False)
