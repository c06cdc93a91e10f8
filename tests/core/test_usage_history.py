"""The decayed usage history: integrated lazily per programme, it must give the shares
that integrating every programme at every change gives (the history's premise: use is
constant between two changes)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.core.usage_history import UsageHistory

HALF_LIFE = 3 * 24 * 3600.0
TENANTS = ("nhs", "research", "startups", "sandbox")


def eager_shares(changes: list[tuple[float, str, int]]) -> dict[str, float] | None:
    """Every programme's decayed GPU-seconds, integrated over each interval between two
    changes with the use of that interval, then each one's fraction of the sum."""
    usage: dict[str, int] = {}
    history: dict[str, float] = {}
    last: float | None = None
    for now, tenant, delta in changes:
        if last is not None and now > last:
            decay = 0.5 ** ((now - last) / HALF_LIFE)
            per_gpu = (1.0 - decay) * HALF_LIFE / math.log(2)
            for name in history:
                history[name] *= decay
            for name, gpus in usage.items():
                history[name] = history.get(name, 0.0) + gpus * per_gpu
        last = now
        usage[tenant] = usage.get(tenant, 0) + delta
        history.setdefault(tenant, 0.0)
    total = sum(history.values())
    return None if total <= 0 else {name: history.get(name, 0.0) / total for name in TENANTS}


@st.composite
def changes(draw) -> list[tuple[float, str, int]]:
    """Starts and stops in time order; a programme never stops more than it runs."""
    usage = dict.fromkeys(TENANTS, 0)
    now = 0.0
    out = []
    for _ in range(draw(st.integers(1, 60))):
        now += draw(st.sampled_from([0.0, 1.0, 600.0, 3600.0, 86400.0, 7 * 86400.0]))
        tenant = draw(st.sampled_from(TENANTS))
        if usage[tenant] and draw(st.booleans()):
            delta = -draw(st.integers(1, usage[tenant]))
        else:
            delta = draw(st.integers(1, 512))
        usage[tenant] += delta
        out.append((now, tenant, delta))
    return out


def replay(changes: list[tuple[float, str, int]], read_every: int) -> UsageHistory:
    usage: dict[str, int] = {}
    history = UsageHistory(HALF_LIFE, usage)
    for n, (now, tenant, delta) in enumerate(changes):
        history.advance(now, tenant)  # before the change, as the scheduler calls it
        usage[tenant] = usage.get(tenant, 0) + delta
        if read_every and n % read_every == 0:
            history.share(tenant)  # a read part-way must not disturb what follows
    return history


@given(changes(), st.sampled_from([0, 1, 3]))
def test_lazy_shares_equal_the_eager_integral(changes, read_every):
    history = replay(changes, read_every)
    expected = eager_shares(changes)
    for tenant in TENANTS:
        got = history.share(tenant)
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected[tenant], rel=1e-9, abs=1e-12)


def test_shares_follow_use_and_decay():
    usage: dict[str, int] = {}
    history = UsageHistory(HALF_LIFE, usage)
    assert history.share("nhs") is None  # nothing recorded yet
    history.advance(0.0, "nhs")
    usage["nhs"] = 100
    history.advance(HALF_LIFE, "research")
    usage["research"] = 100
    assert history.share("nhs") == pytest.approx(1.0)
    assert history.share("research") == 0.0
    # In units of 100 GPUs for H / ln 2: a half-life of use adds 0.5. nhs's first 0.5
    # halves over the second half-life while both add 0.5: nhs 0.75, research 0.5.
    history.advance(2 * HALF_LIFE, "nhs")
    assert history.share("nhs") == pytest.approx(0.75 / 1.25)
    assert history.share("research") == pytest.approx(0.5 / 1.25)
    assert history.share("startups") == 0.0
