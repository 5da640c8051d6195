"""k-point pools: two splits of the world communicator (Firedrake's Ensemble, QE's -npool).

``pool`` holds the ranks that would share one distributed eigensolve (SLEPc, for large
sparse supercells); ``across`` links the ranks with the same position in every pool and
carries the k-sums. The dense solver solves each k-point on one rank, so with it every
rank works on its own blocks and pools change nothing but the layout report.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpi4py import MPI


@dataclass
class Pools:
    """The two communicators of a pool layout and where this rank sits in it."""

    world: MPI.Comm
    pool: MPI.Comm
    across: MPI.Comm
    n_pools: int

    @property
    def index(self) -> int:
        """Which pool this rank belongs to."""
        return self.world.rank // self.pool.size

    def free(self) -> None:
        """Release the split communicators (collective over the world)."""
        for comm in (self.pool, self.across):
            if comm != MPI.COMM_SELF and comm != self.world:
                comm.Free()


def make_pools(world: MPI.Comm, n_pools: int) -> Pools:
    """Split ``world`` into ``n_pools`` contiguous pools. Collective over ``world``.

    Raises ValueError (same on every rank) unless n_pools divides the number of ranks.
    """
    if n_pools < 1 or world.size % n_pools:
        raise ValueError(f"{n_pools} pools do not divide {world.size} ranks")
    per_pool = world.size // n_pools
    pool = world.Split(color=world.rank // per_pool, key=world.rank)
    across = world.Split(color=world.rank % per_pool, key=world.rank)
    return Pools(world, pool, across, n_pools)
