"""Running the planner: inline (tests, tools) or in a worker process (the service).

OR-Tools holds the GIL for the whole search, so a plan solved in a thread of `sigap up`
would stall ingest for seconds; a worker process keeps the event loop free.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pickup_routes.planner import PlanOptions, plan_routes
from pickup_routes.problem import PlanProblem, PlanResult

log = logging.getLogger(__name__)

Solver = Callable[[PlanProblem, PlanOptions], Awaitable[PlanResult]]

_EMPTY = PlanProblem(0.0, 0.0, (), trucks=1, capacity_l=1.0, shift_s=1.0)


async def solve_inline(problem: PlanProblem, options: PlanOptions) -> PlanResult:
    """Solve on the calling thread (blocks the event loop for the time limit)."""
    return plan_routes(problem, options)


class ProcessSolver:
    """Solves in one long-lived worker process, started on first use."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: forking a process with running threads and an event loop
            # copies their locks in whatever state they are.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def warm(self) -> None:
        """Start the worker now, so that the first plan does not wait for it (seconds:
        a new interpreter importing OR-Tools)."""
        self._worker().submit(plan_routes, _EMPTY)

    async def __call__(self, problem: PlanProblem, options: PlanOptions) -> PlanResult:
        """Solve in the worker; a crashed worker is replaced on the next call."""
        if not problem.stops:
            return plan_routes(problem, options)  # nothing to search: no need for the worker
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._worker(), plan_routes, problem, options)
        except BrokenProcessPool:
            log.error("route planner worker died; starting a new one next time")
            self.close()
            raise

    def close(self) -> None:
        """Stop the worker; a plan in progress is abandoned rather than waited for (up to
        the time limit), so that `sigap up` stops at once."""
        if self._pool is not None:
            # The pool has no public way to stop a busy worker before Python 3.14.
            workers = getattr(self._pool, "_processes", None) or {}
            for process in list(workers.values()):
                process.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
