"""Every command in README.md is checked: make targets exist, flags parse, env overrides name real
config keys, REST calls hit served paths. Their behaviour is tested where the feature is."""

from __future__ import annotations

import re
import shlex
import subprocess

import msgspec
import pytest
import yaml

from app_service.cli import parser
from app_service.config import env_name, load

from .mqtt_helpers import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
COMMANDS = [line.split("  #")[0].strip() for block in BLOCKS for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
EDGEX_ENV = {"EDGEX_MSG_BASE64_PAYLOAD", "EDGEX_SECURITY_SECRET_STORE", "EDGEX_USE_REGISTRY",
             "EDGEX_CONFIG_PROVIDER", "EDGEX_PROFILE", "EDGEX_CONFIG_DIR", "EDGEX_CONFIG_FILE"}


def config_env_names() -> set[str]:
    names: set[str] = set()

    def walk(data: dict, path: tuple[str, ...]) -> None:
        for key, value in data.items():
            names.add(env_name((*path, key)))
            if isinstance(value, dict):
                walk(value, (*path, key))

    walk(msgspec.to_builtins(load(REPO / "res" / "configuration.yaml", environ={})), ())
    return names


def served_paths() -> set[str]:
    spec_files = list((REPO / "openapi").glob("*.yaml"))
    paths: set[str] = set()
    for path in spec_files:
        paths |= set(yaml.safe_load(path.read_text())["paths"])
    return paths


def test_readme_has_commands():
    assert "make demo" in COMMANDS and "make test" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_command(command: str):
    words = shlex.split(command)
    env = []
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        env.append(words.pop(0).split("=", 1)[0])
    unknown = [name for name in env if name not in config_env_names() | EDGEX_ENV]
    assert not unknown, f"{command}: {unknown} override no configuration key"
    program, args = words[0], words[1:]
    if program == "make":
        dry = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True)
        assert dry.returncode == 0, f"{command}: {dry.stderr}"
    elif program in (".venv/bin/app-tflite-inference", "app-tflite-inference"):
        parser().parse_args(args)
    elif program == "curl":
        url = next(arg for arg in args if arg.startswith("http"))
        path = re.sub(r"^https?://[^/]+", "", url).split("?")[0]
        templates = [re.sub(r"\{[^}]+\}", "[^/]+", p) for p in served_paths()]
        assert any(re.fullmatch(t, path) for t in templates), f"{command}: {path} is not served"
    elif program == "docker":
        assert words[1:3] in (["compose", "up"], ["compose", "down"], ["compose", "logs"]), command
        assert (REPO / "docker-compose.yml").exists()
    else:
        pytest.fail(f"README command {command!r}: teach tests/test_readme.py how to check it")
