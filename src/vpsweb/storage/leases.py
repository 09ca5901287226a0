"""The leases' seam (re-exported by storage.base), with what a renewal reads of its
job (``Renewal``): the worker's safety net under the job signals (storage.signals)."""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Renewal:
    """A lease renewal and what it read of the job in the same round trip.

    held: this owner holds the lease now (False: another one took it over).
    status: the job's status (None: the job expired or is unknown).
    late_in: seconds until the straggler quorum makes the job's running candidates
      late, by the store's clock (negative: they are; None: no quorum reached yet).
    """

    held: bool
    status: str | None
    late_in: float | None


class Leases(abc.ABC):
    """Who is running a step right now, and cluster-wide locks.

    A lease has an owner token and a short TTL that its holder keeps renewing; when a
    worker dies its leases lapse within the TTL and another worker may take over.
    """

    @abc.abstractmethod
    def acquire(self, job_id: str, key: str, owner: str, ttl_s: float) -> bool: ...

    @abc.abstractmethod
    def renew(self, job_id: str, key: str, owner: str, ttl_s: float) -> bool:
        """Extend the lease; re-take it if it lapsed and nobody else took it. False when
        another owner holds it (this holder must stop)."""

    @abc.abstractmethod
    def keep(self, job_id: str, key: str, owner: str, ttl_s: float) -> Renewal:
        """``renew``, and the job's status and straggler deadline read with it (the
        keeper's round: see storage.signals)."""

    @abc.abstractmethod
    def release(self, job_id: str, key: str, owner: str) -> None: ...

    @abc.abstractmethod
    def holder(self, job_id: str, key: str) -> str | None: ...

    @abc.abstractmethod
    def try_lock(self, name: str, owner: str, ttl_s: float) -> bool:
        """Hold (or keep holding) a named lock for ``ttl_s``: one sweeper at a time."""
