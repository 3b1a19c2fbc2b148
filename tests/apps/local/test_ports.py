"""Ports chosen now and bound later by another process stay out of the ephemeral range."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from apps.local.ports import fixed_free_port


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_fixed_ports_are_free_and_below_the_ephemeral_range() -> None:
    low = _ephemeral_low()
    rng = random.Random(11)
    ports = {fixed_free_port(rng) for _ in range(20)}
    assert all(1024 <= port < low for port in ports), (sorted(ports), low)
    for port in ports:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))  # free: binds


def test_a_held_port_is_not_handed_out() -> None:
    seeded = random.Random(5)
    first = fixed_free_port(random.Random(5))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first))
        holder.listen()
        assert fixed_free_port(seeded) != first
