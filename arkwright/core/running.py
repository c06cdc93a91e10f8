"""Who runs where: each pool's running jobs by expected end, and GPUs in use per programme.

One owner for these facts: the scheduler's stages read them, only `mark_running` and
`release` change them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from arkwright.core.job import Job, JobState, PriorityClass
from arkwright.core.pool_state import Allocation


def end_key(job: Job) -> tuple[float, int]:
    """The order in which running jobs are expected to free their GPUs: a pool's run list
    is sorted by it (`RunningSet` keeps only the first part and breaks ties itself)."""
    return (job.expected_end, job.seq)


class RunningSet:
    __slots__ = (
        "_ends",
        "by_end",
        "preemptible_by_priority",
        "preemptible_gpus_on",
        "preemptible_on",
        "usage_gpus",
    )

    def __init__(self, pools: int) -> None:
        self.by_end: list[list[Job]] = [[] for _ in range(pools)]
        # Each pool's expected ends, in step with `by_end`: bisecting them needs no key
        # function called at every probe (a start and a finish each bisect once). Floats,
        # not `end_key` tuples: a tuple per start to build, compare and free cost more
        # than the rare tie, which the job's `seq` settles by a step or two.
        self._ends: list[list[float]] = [[] for _ in range(pools)]
        self.usage_gpus: dict[str, int] = {}
        self.preemptible_by_priority = [0] * len(PriorityClass)
        # Per pool, its running jobs that may be preempted, by id: a search for victims
        # walks these, not the whole run list (a pool of thousands of jobs may hold a
        # few preemptible ones), and passes over a pool of none.
        self.preemptible_on: list[dict[str, Job]] = [{} for _ in range(pools)]
        # Per pool, the GPUs its preemptible jobs hold, by programme and priority class:
        # what a victim search could free at most, known before it walks any job.
        self.preemptible_gpus_on: list[dict[str, list[int]]] = [{} for _ in range(pools)]

    def __len__(self) -> int:
        return sum(len(r) for r in self.by_end)

    def ending_by(self, pool_index: int, until: float) -> list[Job]:
        """The pool's running jobs due to end (at their time limits) by `until`, in order."""
        return self.by_end[pool_index][: bisect_right(self._ends[pool_index], until)]

    def anyone_preemptible(self) -> bool:
        return any(self.preemptible_by_priority)

    def mark_running(
        self, job: Job, pool_index: int, allocation: Allocation, speed: float, started_at: float
    ) -> None:
        """Book a job as running on GPUs already taken for it."""
        job.state = JobState.RUNNING
        job.pool_index = pool_index
        job.allocation = allocation
        gpus = 0
        for _, on_node in allocation:
            gpus += on_node
        job.allocated_gpus = gpus
        job.speed = speed
        job.started_at = started_at
        if job.first_started_at < 0:
            job.first_started_at = started_at
        job.expected_end = started_at + job.remaining_request_s / speed
        running, ends = self.by_end[pool_index], self._ends[pool_index]
        end, seq = job.expected_end, job.seq
        if not ends or ends[-1] < end or (ends[-1] == end and running[-1].seq < seq):
            running.append(job)
            ends.append(end)
        else:
            i = bisect_right(ends, end)
            while i and ends[i - 1] == end and running[i - 1].seq > seq:
                i -= 1  # ties in `end_key` order
            running.insert(i, job)
            ends.insert(i, end)
        self.usage_gpus[job.tenant] = self.usage_gpus.get(job.tenant, 0) + job.allocated_gpus
        if job.preemptible:
            self.preemptible_by_priority[job.priority] += 1
            self.preemptible_on[pool_index][job.job_id] = job
            held = self.preemptible_gpus_on[pool_index].get(job.tenant)
            if held is None:
                held = self.preemptible_gpus_on[pool_index][job.tenant] = [0] * len(PriorityClass)
            held[job.priority] += gpus

    def check(self) -> None:
        """Each run list in `end_key` order, its expected ends in step (tests; O(jobs))."""
        for pool_index, running in enumerate(self.by_end):
            keys = [end_key(job) for job in running]
            if keys != sorted(keys) or [k[0] for k in keys] != self._ends[pool_index]:
                raise AssertionError(f"pool {pool_index}: run list out of order or of step")

    def release(self, job: Job) -> None:
        """Take a job off its pool's run list (its GPUs are the caller's to give back)."""
        pool_index = job.pool_index
        running, ends = self.by_end[pool_index], self._ends[pool_index]
        end = job.expected_end
        i = bisect_left(ends, end)
        last = len(running)
        while i < last and running[i] is not job and ends[i] == end:
            i += 1  # past the ties before it
        if i >= last or running[i] is not job:
            raise AssertionError(f"job {job.job_id} missing from pool {pool_index} run list")
        del running[i]
        del ends[i]
        self.usage_gpus[job.tenant] -= job.allocated_gpus
        if job.preemptible:
            self.preemptible_by_priority[job.priority] -= 1
            del self.preemptible_on[pool_index][job.job_id]
            self.preemptible_gpus_on[pool_index][job.tenant][job.priority] -= job.allocated_gpus
        job.allocation = ()
        job.allocated_gpus = 0
