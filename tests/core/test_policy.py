import pytest

from arkwright.core.policy import PolicySpec, UnknownPolicy


def test_names_compose():
    spec = PolicySpec.parse("fairshare+backfill+hetero")
    assert spec.fairshare and spec.backfill and spec.hetero and not spec.carbon
    assert not spec.strict and spec.preemption


def test_fifo_is_strict_and_backfill_is_not():
    assert PolicySpec.parse("fifo").strict
    assert not PolicySpec.parse("backfill").strict


@pytest.mark.parametrize(
    "text, needle",
    [
        ("lottery", "lottery"),
        ("", "empty"),
        ("fifo+backfill", "fifo"),
        ("backfill+backfill", "twice"),
    ],
)
def test_bad_names_are_explained(text, needle):
    with pytest.raises(UnknownPolicy, match=needle):
        PolicySpec.parse(text)
