"""Every script in the table becomes exactly its request, or exactly its error."""

from __future__ import annotations

import pytest

from arkwright.sbatch import SbatchError, parse_command_line, read_submission
from arkwright.service.schema import JobSubmit
from tests.sbatch.scripts import CASES, Case


def read(case: Case):
    cli = parse_command_line(list(case.argv))
    return read_submission(cli, case.script, case.env)


def test_the_table_holds_at_least_fifty_scripts() -> None:
    assert len(CASES) >= 50
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.error is None], ids=lambda c: c.id)
def test_script_becomes_its_request(case: Case) -> None:
    submission = read(case)
    body = dict(submission.body)
    assert body.pop("script") == case.script
    assert body == case.body
    assert submission.warnings == case.warnings


@pytest.mark.parametrize("case", [c for c in CASES if c.error is None], ids=lambda c: c.id)
def test_every_request_is_one_the_api_takes(case: Case) -> None:
    JobSubmit.model_validate(read(case).body)


@pytest.mark.parametrize("case", [c for c in CASES if c.error is not None], ids=lambda c: c.id)
def test_bad_script_is_refused_naming_why(case: Case) -> None:
    with pytest.raises(SbatchError) as caught:
        read(case)
    assert str(caught.value) == case.error
