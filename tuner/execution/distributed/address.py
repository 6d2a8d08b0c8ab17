"""The chief's address, HOST:PORT, as --oracle gives it."""

from __future__ import annotations

from tuner.errors import TunerUsageError


def parse_address(address: str) -> tuple[str, int]:
    """Split HOST:PORT, with a clear error for anything else."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TunerUsageError(f"--oracle must be HOST:PORT (e.g. 127.0.0.1:8000), got {address!r}.")
    return host.strip("[]"), int(port)
