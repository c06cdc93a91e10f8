"""sbatch's --output/--error patterns, expanded as Slurm's expand_stdio_fields does, and
confined to the job's run directory."""

from __future__ import annotations

import pytest

from arkwright.backends.batch import BadScript, check_script
from arkwright.backends.log_patterns import (
    FIRST_NODE,
    BadLogPattern,
    PatternFields,
    check_pattern,
    expand,
    render,
    targets,
)

JOB = PatternFields("j-0000012", "train", "alice", None, None, "gpu-a01")
TASK = PatternFields("j-0000014", "sweep", "bob", "j-0000012", 3, "gpu-a01")


@pytest.mark.parametrize(
    ("pattern", "fields", "expected"),
    [
        ("train-%j-%x.out", JOB, "train-j-0000012-train.out"),
        ("slurm-%j.out", JOB, "slurm-j-0000012.out"),
        ("%x_%A_%a.log", TASK, "sweep_j-0000012_3.log"),
        ("%A_%a.log", JOB, "j-0000012_4294967294.log"),  # Slurm's NO_VAL outside an array
        ("%x-%4a.out", TASK, "sweep-0003.out"),  # a width zero-pads a number
        ("%12a", TASK, "0000000003"),  # at most 10 wide
        ("%4j.out", JOB, "j-0000012.out"),  # ... and is ignored for a name
        ("%b", TASK, "3"),
        ("%u/%N.out", TASK, "bob/gpu-a01.out"),
        ("%J-%s-%n-%t", JOB, "j-0000012-batch-0-0"),
        ("100%%.txt", JOB, "100%.txt"),
        ("odd%q", JOB, "odd%q"),  # not a field: kept as written
        ("%5q", JOB, "5q"),  # Slurm's quirk: the last digit stays, the % goes
        ("tail%", JOB, "tail"),  # a lone % at the end is dropped
        ("plain.log", JOB, "plain.log"),
        ("no\\%j\\expansion", JOB, "no%jexpansion"),  # a backslash turns expansion off
    ],
)
def test_expansion_matches_slurm(pattern, fields, expected):
    assert render(expand(pattern, fields), "unused") == expected


def test_the_first_node_is_left_for_the_site_when_unknown():
    fields = PatternFields("j-1", "x", "u", None, None, None)
    assert expand("%x-%N.out", fields) == ["x-", FIRST_NODE, ".out"]
    assert render(expand("%x-%N.out", fields), "n07") == "x-n07.out"


@pytest.mark.parametrize(
    ("pattern", "name", "why"),
    [
        ("../../arkwright.db", "", "climbs out"),
        ("logs/../../x", "", "climbs out"),
        ("/etc/cron.d/evil", "", "absolute path"),
        ("//tmp/x", "", "absolute path"),
        ("%x/out", "..", "climbs out"),  # the name is the tenant's too
        ("%x.out", "/etc/passwd", "absolute path"),
        ("logs/", "", "directory"),
        (".", "", "run directory"),
        ("", "", "empty"),
        ("a" * 300, "", "longer than 255"),
    ],
)
def test_patterns_outside_the_run_directory_are_refused_naming_the_field(pattern, name, why):
    with pytest.raises(BadLogPattern, match=f"^error: .*{why}"):
        check_pattern(pattern, "error", name)


def test_dev_null_and_nested_relative_paths_are_accepted():
    assert check_pattern("/dev/null", "output") == "/dev/null"
    assert check_pattern("logs/./%x/%j.out", "output", "train") == "logs/./%x/%j.out"


def test_output_alone_also_takes_stderr_as_sbatch_does():
    both = targets("o-%j.log", None, JOB)
    assert both.stdout == both.stderr == ["o-j-0000012.log"]
    apart = targets("o.log", "e.log", JOB)
    assert (apart.stdout, apart.stderr) == (["o.log"], ["e.log"])
    only_error = targets(None, "e.log", JOB)
    assert (only_error.stdout, only_error.stderr) == (None, ["e.log"])
    assert not targets(None, None, JOB).any


def test_expansion_that_escapes_after_the_fact_is_refused():
    hostile = PatternFields("j-1", "../../..", "u", None, None, "n")
    with pytest.raises(BadLogPattern, match=r"^output: .*climbs out"):
        targets("%x/db", None, hostile)


@pytest.mark.parametrize(
    ("script", "why"),
    [
        ("echo hi\n", "first line must start with #!"),
        ("\n#!/bin/bash\n", "first line must start with #!"),
        ("#!\necho\n", "names no interpreter"),
        ("#!/bin/bash\r\necho hi\r\n", "DOS line breaks .* from line 1"),
        ("#!/bin/bash\necho a\necho b\r\n", "from line 3"),
    ],
)
def test_scripts_sbatch_refuses_are_refused(script, why):
    with pytest.raises(BadScript, match=f"^script: .*{why}"):
        check_script(script)


def test_scripts_with_any_interpreter_line_are_accepted():
    for line in ("#!/bin/bash -l", "#!/usr/bin/env python3", "#! /bin/zsh", "#!/bin/bash -e"):
        assert check_script(f"{line}\necho\n") == f"{line}\necho\n"
