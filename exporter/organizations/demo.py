"""A simulated organization of ``--demo --config.file``, mapped onto the simulator: its
size onto ``OrganizationSpec``, its faults onto a ``FaultInjector``."""

from __future__ import annotations

from exporter.organizations.schema import DemoOrganization
from exporter.simulator.faults import Fault, FaultInjector
from exporter.simulator.organization import OrganizationSpec


def demo_spec(demo: DemoOrganization) -> OrganizationSpec:
    """What ``build_organization`` grows for it: its seed and size, the rest as usual."""
    return OrganizationSpec(
        seed=demo.seed, projects=demo.projects, keys_per_project=demo.keys_per_project
    )


def demo_faults(demo: DemoOrganization) -> FaultInjector:
    """Its latency, and each of its faults armed for every matching request."""
    injector = FaultInjector(latency=demo.latency)
    for fault in demo.faults:
        injector.add(
            Fault(fault.kind, status=fault.status, delay=fault.delay),
            endpoint=fault.endpoint,
            times=None,
        )
    return injector
