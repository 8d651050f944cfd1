"""`openai-admin-api-simulator`: serve a seeded simulated organization until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from exporter.simulator.app import SimulatorState, serve_simulator
from exporter.simulator.buckets import COST_AMOUNTS
from exporter.simulator.faults import API_ENDPOINTS, Fault, FaultInjector, FaultKind
from exporter.simulator.organization import OrganizationSpec, build_organization

DEFAULT_LISTEN = "127.0.0.1:8089"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = OrganizationSpec(
        seed=args.seed,
        projects=args.projects,
        keys_per_project=args.keys_per_project,
        archived_fraction=args.archived_fraction,
        never_used_fraction=args.never_used_fraction,
        service_account_fraction=args.service_account_fraction,
        inactive_owner_fraction=args.inactive_owner_fraction,
        awkward_names=args.awkward_names,
        admin_keys=args.admin_keys,
        invites=args.invites,
        certificates=args.certificates,
        departed_users=args.departed_users,
        active_keys=args.active_keys,
        models_per_source=args.models_per_source,
        usage_lateness=args.usage_lateness,
        cost_lateness=args.cost_lateness,
        audit_history=args.audit_history,
        audit_logging=args.audit_logging,
    )
    faults = FaultInjector(latency=args.latency)
    if args.fault_rate > 0:
        faults.set_random(
            args.fault_rate, args.faults, seed=args.seed, endpoints=args.fault_endpoint or None
        )
    state = SimulatorState(
        org=build_organization(spec),
        faults=faults,
        accepted_admin_keys=set(args.admin_key) if args.admin_key else None,
        cost_amounts_as_strings=args.cost_amounts_as_strings,
    )
    try:
        asyncio.run(_serve(state, args.listen))
    except OSError as error:
        print(
            f"openai-admin-api-simulator: cannot listen on {args.listen}: {error}", file=sys.stderr
        )
        return 1
    return 0


async def _serve(state: SimulatorState, listen: tuple[str, int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host, port = listen
    async with serve_simulator(state, host, port) as base_url:
        # The URL alone on stdout, so scripts can read it; the summary goes to stderr.
        print(base_url, flush=True)
        print(
            f"OpenAI Admin API simulator: {len(state.org.projects(include_archived=True))} "
            f"projects, {state.org.key_count()} keys, {len(state.org.members())} users, "
            f"{len(state.org.admin_keys())} admin keys, {state.org.usage.series_count()} "
            f"usage series; any sk-admin- bearer is "
            f"{'refused unless listed' if state.accepted_admin_keys else 'accepted'}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


def _listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}")
    return int(value)


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value!r}")
    return number


def _faults(value: str) -> list[Fault]:
    """`429,500,slow,malformed_json`: a status code or a fault kind per item."""
    faults: list[Fault] = []
    for item in (part.strip() for part in value.split(",") if part.strip()):
        try:
            if item.isdigit():
                retry_after = "1" if item == "429" else None
                faults.append(Fault("status", status=int(item), retry_after=retry_after))
            elif item == "slow":
                faults.append(Fault("slow", delay=5.0))
            elif item in _PLAIN_FAULT_KINDS:
                faults.append(Fault(_PLAIN_FAULT_KINDS[item]))
            else:
                raise ValueError(f"unknown fault {item!r}")
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return faults


_PLAIN_FAULT_KINDS: dict[str, FaultKind] = {
    "reset": "reset",
    "truncated": "truncated",
    "malformed_json": "malformed_json",
    "wrong_shape": "wrong_shape",
    "repeat_cursor": "repeat_cursor",
    "oversized_page": "oversized_page",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openai-admin-api-simulator",
        description=(
            "Serve a simulated OpenAI Admin API (projects, API keys, service accounts, "
            "admin keys, users, invites, certificates, usage, costs, the audit log)."
        ),
    )
    parser.add_argument(
        "--listen",
        type=_listen_address,
        default=DEFAULT_LISTEN,
        help=f"host:port to listen on, port 0 for any (default {DEFAULT_LISTEN})",
    )
    parser.add_argument("--seed", type=int, default=1, help="organization seed (default 1)")
    parser.add_argument("--projects", type=_non_negative_int, default=10)
    parser.add_argument("--keys-per-project", type=_non_negative_int, default=5)
    parser.add_argument("--archived-fraction", type=_fraction, default=0.1)
    parser.add_argument("--never-used-fraction", type=_fraction, default=0.2)
    parser.add_argument("--service-account-fraction", type=_fraction, default=0.3)
    parser.add_argument("--inactive-owner-fraction", type=_fraction, default=0.1)
    parser.add_argument("--admin-keys", type=_non_negative_int, default=6)
    parser.add_argument("--invites", type=_non_negative_int, default=5)
    parser.add_argument("--certificates", type=_non_negative_int, default=4)
    parser.add_argument(
        "--departed-users",
        type=_non_negative_int,
        default=None,
        help="key owners who left the organization (default: 5%% of key owners, at least 1)",
    )
    parser.add_argument(
        "--awkward-names",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="quotes, backslashes, newlines, emoji in some names (default on)",
    )
    parser.add_argument(
        "--active-keys",
        type=_non_negative_int,
        default=None,
        help="keys with background usage (default: those used within two days)",
    )
    parser.add_argument(
        "--models-per-source",
        type=_non_negative_int,
        default=2,
        help="models each active key uses per usage source (default 2)",
    )
    parser.add_argument(
        "--usage-lateness",
        type=_non_negative_int,
        default=900,
        help="seconds a usage bucket keeps growing after its end (default 900)",
    )
    parser.add_argument(
        "--cost-lateness",
        type=_non_negative_int,
        default=86_400,
        help="seconds a cost bucket keeps growing after its end (default 86400)",
    )
    parser.add_argument(
        "--cost-amounts-as-strings",
        choices=COST_AMOUNTS,
        default="sometimes",
        help="send costs' amount.value as a JSON string (default sometimes)",
    )
    parser.add_argument(
        "--audit-history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the audit log's last 7 days: key creations with scopes, logins (default on)",
    )
    parser.add_argument(
        "--audit-logging",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-audit-logging: answer the audit log as an organization that never "
        "enabled it (a 403)",
    )
    parser.add_argument(
        "--latency", type=_non_negative_float, default=0.0, help="seconds added to every request"
    )
    parser.add_argument(
        "--admin-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept only this admin key (repeatable); default: any sk-admin- key",
    )
    parser.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        help="probability that a request suffers one of --faults",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default="429,500,503",
        help="comma-separated status codes and fault kinds (default 429,500,503)",
    )
    parser.add_argument(
        "--fault-endpoint",
        action="append",
        default=[],
        choices=API_ENDPOINTS,
        help="apply --fault-rate to this endpoint only (repeatable; default: every endpoint)",
    )
    return parser
