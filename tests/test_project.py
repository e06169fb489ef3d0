"""The project's own promises: CI runs README's test command; README documents every config key."""

from __future__ import annotations

import re
from pathlib import Path

from cascade_cli.config import SCHEMA

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The commands of the README's first two ```sh blocks: install-and-run, then test."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    install_and_run, test = readme_commands()
    # The main job: the hub, on the embedded in-memory Redis when no Redis runs.
    assert install_and_run == "python3 -m pip install . && cascade serve"
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test
    assert "export CASCADE_TEST_REQUIRE_REDIS=1" in ci


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for spec in SCHEMA:
        assert f"| `{spec.dotted}` | `{spec.env}` |" in readme, spec.dotted
