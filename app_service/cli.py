"""Command line: `app-tflite-inference` runs the service; `simulate` and `demo` are subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import SERVICE_KEY, __version__
from .config import load
from .demo import demo, demo_arguments
from .inference import LOAD_ERRORS
from .logs import configure
from .simulator import simulate, simulate_arguments

log = logging.getLogger(SERVICE_KEY)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def config_file_arguments(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Where the configuration file is. `suppress` (for subcommands, which take them too) keeps
    a subcommand from resetting values given before it."""
    def default(value: str) -> str:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("-cd", "--configDir", default=default(os.environ.get("EDGEX_CONFIG_DIR", "res")),
                        help="folder holding the configuration file (default: res)")
    parser.add_argument("-cf", "--configFile",
                        default=default(os.environ.get("EDGEX_CONFIG_FILE", "configuration.yaml")),
                        help="configuration file name (default: configuration.yaml)")
    parser.add_argument("-p", "--profile", default=default(os.environ.get("EDGEX_PROFILE", "")),
                        help="configuration profile: reads CONFIGDIR/PROFILE/CONFIGFILE")


def service_arguments(parser: argparse.ArgumentParser) -> None:
    """EdgeX's standard service flags (and their EDGEX_* environment equivalents)."""
    config_file_arguments(parser)
    parser.add_argument("-r", "--registry", action="store_true", default=_env_flag(
        "EDGEX_USE_REGISTRY"), help="register with the registry (core-keeper or Consul)")
    parser.add_argument("-cp", "--configProvider", nargs="?", const="keeper.http://localhost:59890",
                        default=os.environ.get("EDGEX_CONFIG_PROVIDER", ""),
                        help="configuration provider URL, e.g. keeper.http://localhost:59890")
    parser.add_argument("-o", "--overwrite", action="store_true",
                        help="overwrite the provider's copy of this service's configuration")


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.configDir) / (args.profile or "") / args.configFile


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog=SERVICE_KEY, description=__doc__)
    main.add_argument("--version", action="version", version=f"{SERVICE_KEY} {__version__}")
    service_arguments(main)
    config_file = argparse.ArgumentParser(add_help=False)
    config_file_arguments(config_file, suppress=True)
    commands = main.add_subparsers(dest="command", title="commands (default: run the service)")
    simulate_arguments(commands.add_parser(
        "simulate", parents=[config_file],
        help="publish simulated sensor events, with faults, as a device service would"))
    demo_arguments(commands.add_parser(
        "demo", parents=[config_file],
        help="broker, simulator and service in one process, shown live; writes plots"))
    return main


def run_service(args: argparse.Namespace) -> int:
    from .deployment import Deployment
    from .provider import load_from_provider
    from .service import Service

    configure("INFO")  # until the configuration says otherwise: waiting for a provider is logged
    try:
        if args.configProvider:
            config = load_from_provider(config_path(args), args.configProvider,
                                        overwrite=args.overwrite)
        else:
            config = load(config_path(args))
        configure(config.writable.log_level)
        service = Service(config)
        deployment = Deployment(service, register=args.registry)
        service.before_disconnect.append(deployment.stop)
        service.start()
    except LOAD_ERRORS as exc:
        configure("INFO")
        log.error("cannot start: %s", exc)
        return 1
    deployment.start()
    service.run_until_signalled()
    return 1 if service.lost_bus else 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "simulate":
        configure("INFO")
        return simulate(args, config_path(args))
    if args.command == "demo":
        return demo(args, config_path(args))
    return run_service(args)


if __name__ == "__main__":
    sys.exit(main())
