"""An outage test waits for other users of the services, and holds new ones back while it runs."""

from __future__ import annotations

from pathlib import Path

from logpipe.dev.services.sharing import ServiceUseLock


def test_outage_waits_for_users_and_blocks_new_ones(tmp_path: Path) -> None:
    # Separate lock objects stand for separate pytest processes (flock is per open file).
    lock_file = tmp_path / "in-use.lock"
    user, outage, late_user = ServiceUseLock(lock_file), ServiceUseLock(lock_file), ServiceUseLock(lock_file)

    user.shared()
    outage.shared()  # the outage test also uses services before it stops one
    assert (user.mode, outage.mode) == ("shared", "shared")

    outage.exclusive(timeout=0.3)  # another test still runs: gives up and keeps using them
    assert outage.mode == "shared"

    user.release()
    outage.exclusive(timeout=2)
    assert outage.mode == "exclusive"

    late_user.shared(timeout=0.3)  # held back, then goes ahead rather than hang
    assert late_user.mode is None

    outage.release()
    late_user.shared(timeout=2)
    assert late_user.mode == "shared"
    late_user.release()
