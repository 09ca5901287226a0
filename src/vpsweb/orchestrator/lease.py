"""A step's lease, as one delivery holds it: its token, taking, renewing, releasing.

The store keeps the lease (``Leases``: SET NX with a TTL, renewed or released only
by its token); a step's first batch (``StepLog.begin``) takes it with this token
and its finishing batch (``StepLog.finish``) releases it. While the step runs, the
worker's keeper renews it up to the step's worst case from the plan; a renewal that
finds another token marks the lease lost, and the step stops. Each renewal also reads
the job's status and straggler deadline (``Leases.keep``) for ``on_renewal``: the
safety net under the job signals (orchestrator.watch).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from vpsweb.orchestrator.keeper import Claim, Keeper
from vpsweb.storage import Leases
from vpsweb.storage.leases import Renewal

LEASE_TTL_S = 15.0  # a dead worker's step is free again this long after its last renewal


class Lease:
    """This delivery's lease on one step (``owner``: the worker process's id)."""

    ttl_s = LEASE_TTL_S

    def __init__(
        self,
        leases: Leases,
        keeper: Keeper,
        job_id: str,
        key: str,
        owner: str,
        *,
        on_renewal: Callable[[Renewal], None] | None = None,
    ) -> None:
        self.leases, self.keeper, self.on_renewal = leases, keeper, on_renewal
        self.job_id, self.key = job_id, key
        self.token = f"{owner}:{uuid.uuid4().hex[:8]}"
        self.claim: Claim | None = None

    @property
    def what(self) -> str:
        return f"lease on {self.job_id}/{self.key}"

    def take(self) -> bool:
        """Take the lease alone (a step's first batch takes it with the rest)."""
        return self.leases.acquire(self.job_id, self.key, self.token, self.ttl_s)

    def renew(self) -> bool:
        renewal = self.leases.keep(self.job_id, self.key, self.token, self.ttl_s)
        if self.on_renewal is not None:
            self.on_renewal(renewal)
        return renewal.held

    def keep(self, for_s: float) -> None:
        """Have the keeper renew it for up to ``for_s`` seconds, once it is taken."""
        self.claim = self.keeper.keep(self.renew, for_s=for_s, what=self.what)

    @property
    def lost(self) -> bool:
        """A renewal found another holder: this delivery must stop."""
        return self.claim is not None and self.claim.lost.is_set()

    def stop_renewing(self) -> None:
        """Stop renewing (the finishing batch released it, or release() does)."""
        if self.claim is not None:
            self.keeper.drop(self.claim)

    def release(self) -> None:
        """Give the lease up now: stop renewing first, so that no renewal re-takes it."""
        self.stop_renewing()
        self.leases.release(self.job_id, self.key, self.token)
