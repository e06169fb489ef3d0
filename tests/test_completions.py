"""The shell completion scripts in completions/ are what the app generates, and they work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Sandbox, cascade_command

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"
SCRIPTS = {"bash": "cascade.bash", "zsh": "_cascade", "fish": "cascade.fish"}


@pytest.mark.parametrize("shell", list(SCRIPTS))
def test_committed_script_matches_the_app(sandbox: Sandbox, shell: str) -> None:
    result = sandbox.run(env={"_CASCADE_COMPLETE": f"source_{shell}"})
    assert result.returncode == 0, result.stderr
    committed = (COMPLETIONS / SCRIPTS[shell]).read_text()
    assert result.stdout == committed, f"run completions/generate to refresh {SCRIPTS[shell]}"


def bash_complete(sandbox: Sandbox, words: list[str]) -> list[str]:
    """Source completions/cascade.bash in a real bash and complete `words` (the last is partial)."""
    bin_dir = str(Path(cascade_command()[0]).parent) if len(cascade_command()) == 1 else None
    if bin_dir is None:
        pytest.skip("the cascade console script is not installed")
    script = (
        f"source {COMPLETIONS / 'cascade.bash'}\n"
        f"COMP_WORDS=({' '.join(words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_cascade_completion cascade\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**sandbox.env, "PATH": f"{bin_dir}:{sandbox.env.get('PATH', '')}"}
    bash = shutil.which("bash")
    assert bash, "bash is needed to test completion"
    result = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True,
                            text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_groups_commands_and_resources(sandbox: Sandbox) -> None:
    assert bash_complete(sandbox, ["cascade", "be"]) == ["bench"]
    assert set(bash_complete(sandbox, ["cascade", "venice", ""])) >= {"ping", "get"}
    assert bash_complete(sandbox, ["cascade", "venice", "get", "ci"]) == ["citizens"]
    assert "--count" in bash_complete(sandbox, ["cascade", "venice", "ping", "--c"])
