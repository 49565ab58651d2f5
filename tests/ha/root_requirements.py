"""Install what Home Assistant would install at its first start (runs in its venv, in the root).

Usage: python root_requirements.py DOMAIN... --needed DOMAIN...

Home Assistant installs an integration's Python requirements when it first loads it, with its own
installer (``homeassistant.requirements``: the integration, its dependencies, its
after-dependencies and the discovery integrations its manifest names, under Home Assistant's
``package_constraints.txt``). The live tests start it with ``--skip-pip`` (no network at test
time, and the cached venv never changes under a test), so everything it will load is installed
here, once, by that same code: the integrations every start sets up (``homeassistant.bootstrap``'s
sets) and the DOMAINs given (configured ones, and MQTT, which its config entry loads later).

Some requirements have no wheel for the root's Python and need a compiler (e.g. the voice
pipeline's); a minbase root has none, so those integrations fail to set up in the test instance,
which the MQTT tests do not use. Only a failure among the ``--needed`` domains (and what they
depend on) fails this script (exit 1, naming them); the others are listed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile

from homeassistant import bootstrap, loader, requirements
from homeassistant.core import HomeAssistant

# The sets bootstrap sets up at every start (their names have not changed since 2021).
ALWAYS = ("CORE_INTEGRATIONS", "DEFAULT_INTEGRATIONS", "FRONTEND_INTEGRATIONS")


def domains_to_install(extra: list[str]) -> list[str]:
    """The domains a start sets up by itself, and `extra`."""
    found: set[str] = set(extra)
    for name in ALWAYS:
        found.update(getattr(bootstrap, name, ()))
    return sorted(found)


async def install(domains: list[str]) -> dict[str, str]:
    """Install the requirements of `domains` as Home Assistant does; {domain: error} of failures."""
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ha-requirements-") as config_dir:
        hass = HomeAssistant(config_dir)
        loader.async_setup(hass)
        for domain in domains:
            try:
                await requirements.async_get_integration_with_requirements(hass, domain)
            except Exception as error:  # RequirementsNotFound, IntegrationNotFound, ...
                failed[domain] = str(error)
                print(f"not installed: {domain}: {error}", flush=True)
            else:
                print(f"installed: {domain}", flush=True)
        await hass.async_stop(force=True)
    return failed


def main() -> int:
    """Install, and judge the failures by the needed domains."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*")
    parser.add_argument("--needed", nargs="*", default=[])
    args = parser.parse_args()
    failed = asyncio.run(install(domains_to_install([*args.domains, *args.needed])))
    broken = {domain: error for domain, error in failed.items() if domain in args.needed}
    if failed:
        print(f"integrations Home Assistant will not set up here: {', '.join(sorted(failed))}")
    if broken:
        details = "; ".join(f"{domain}: {error}" for domain, error in sorted(broken.items()))
        print(f"requirements of needed integrations failed: {details}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
