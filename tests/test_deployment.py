"""docker-compose.yml and the Dockerfile: what can be checked without a Docker engine."""

from __future__ import annotations

import glob

import yaml

from app_service.cli import parser

from .mqtt_helpers import REPO
from .test_readme import config_env_names

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICE = COMPOSE["services"]["app-tflite-inference"]


def test_our_service_is_set_up_like_an_edgex_4_service():
    assert COMPOSE["networks"]["edgex-network"]["name"] == "edgex_edgex-network"
    assert SERVICE["read_only"] is True and SERVICE["user"] == "2002:2001"
    assert "no-new-privileges:true" in SERVICE["security_opt"]
    env = SERVICE["environment"]
    assert env["EDGEX_SECURITY_SECRET_STORE"] == "false"
    assert env["SERVICE_HOST"] == SERVICE["container_name"] == "app-tflite-inference"
    args = parser().parse_args(SERVICE["command"])
    assert args.registry and args.configProvider == "keeper.http://edgex-core-keeper:59890"


def test_every_override_names_a_config_key():
    known = config_env_names() | {"EDGEX_SECURITY_SECRET_STORE"}
    assert set(SERVICE["environment"]) <= known


def test_ui_can_list_app_services_and_images_are_pinned():
    ui = COMPOSE["services"]["ui"]["environment"]
    assert (ui["REGISTRY_HOST"], ui["REGISTRY_PORT"], ui["REGISTRY_TYPE"]) == (
        "edgex-core-keeper", "59890", "keeper")
    for name, service in COMPOSE["services"].items():
        if "build" not in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_dockerfile_copies_files_that_exist():
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert glob.glob(str(REPO / source)), source
