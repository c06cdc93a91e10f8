"""Invariants of the arithmetic and of the option syntax, over many inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkwright.sbatch import SbatchError, parse_command_line, read_submission
from arkwright.sbatch.getopt import Word, parse_words
from arkwright.sbatch.options import TABLE, ArgKind
from arkwright.service.schema import JobSubmit

counts = st.integers(1, 16)


def body(directives: str, *argv: str) -> dict:
    script = f"#!/bin/bash\n#SBATCH {directives} -t 5\nsrun x\n"
    return read_submission(parse_command_line([*argv, "job.sh"]), script, {}).body


@given(nodes=counts, tasks_per_node=counts, gpus_per_task=st.integers(1, 4))
def test_gpus_per_task_on_fixed_tasks_per_node(nodes, tasks_per_node, gpus_per_task):
    by_nodes = body(
        f"-N {nodes} --ntasks-per-node={tasks_per_node} --gpus-per-task={gpus_per_task}"
    )
    by_tasks = body(
        f"--ntasks={nodes * tasks_per_node} --ntasks-per-node={tasks_per_node} "
        f"--gpus-per-task={gpus_per_task}"
    )
    for request in (by_nodes, by_tasks):
        assert request["gpus"] == nodes * tasks_per_node * gpus_per_task
        assert request["nodes"] == nodes
        JobSubmit.model_validate(request)


@given(nodes=counts, per_node=st.integers(1, 8))
def test_three_ways_to_write_one_node_shape_agree(nodes, per_node):
    shapes = {
        (b["gpus"], b["nodes"])
        for b in (
            body(f"-N {nodes} --gres=gpu:{per_node}"),
            body(f"-N {nodes} --gpus-per-node={per_node}"),
            body(f"-N {nodes} --gpus={nodes * per_node}"),
        )
    }
    assert shapes == {(nodes * per_node, nodes)}


@given(tasks=st.integers(1, 64), tasks_per_node=counts)
def test_ntasks_without_nodes_needs_ceil_nodes(tasks, tasks_per_node):
    spec = f"--ntasks={tasks} --ntasks-per-node={tasks_per_node} --gpus=1"
    nodes = -(-tasks // tasks_per_node)
    if nodes == 1:
        assert body(spec)["nodes"] == 1
    else:
        with pytest.raises(SbatchError, match=f"over {nodes} nodes"):
            body(spec)  # one GPU cannot be split over several nodes


@given(total=st.integers(1, 64), nodes=counts)
def test_a_total_is_shaped_only_when_it_splits_evenly(total, nodes):
    if total % nodes:
        with pytest.raises(SbatchError, match="does not split evenly"):
            body(f"--gpus={total} -N {nodes}")
    else:
        assert (body(f"--gpus={total} -N {nodes}")["nodes"]) == nodes


@given(st.lists(st.sampled_from(["-p a", "-p b", "-t 9", "-t 7", "-J x", "-J y"]), max_size=6))
def test_the_command_line_wins_over_the_script(overrides):
    argv = [word for pair in overrides for word in pair.split()]
    request = body("-p script -J script --gpus=1", *argv)
    last = {pair.split()[0]: pair.split()[1] for pair in overrides}
    assert request["partition"] == last.get("-p", "script")
    assert request["name"] == last.get("-J", "script")


@pytest.mark.parametrize("option", TABLE, ids=lambda o: o.name)
def test_every_prefix_reads_as_getopt_long_would(option):
    for length in range(1, len(option.name) + 1):
        prefix = option.name[:length]
        others = [o for o in TABLE if o.name.startswith(prefix)]
        exact = [o for o in TABLE if o.name == prefix]
        if exact or others == [option]:  # an exact name wins over longer ones
            meant = (exact or others)[0]
            word = f"--{prefix}" + ("=1" if meant.arg is not ArgKind.NONE else "")
            parsed = parse_words([Word(word, "here"), Word("1", "here")])
            assert parsed.given[0].option is meant
        else:
            with pytest.raises(SbatchError, match="is ambiguous"):
                parse_words([Word(f"--{prefix}", "here")])


@pytest.mark.parametrize("option", [o for o in TABLE if o.short], ids=lambda o: o.short)
def test_short_forms_take_values_as_getopt(option):
    if option.arg is ArgKind.NONE:
        with pytest.raises(SbatchError, match="invalid option -- '5'"):
            parse_words([Word(f"-{option.short}5", "here")])
        return
    attached = parse_words([Word(f"-{option.short}5", "here")])
    assert attached.given[0].value == "5"
    spaced = parse_words([Word(f"-{option.short}", "here"), Word("7", "here")])
    if option.arg is ArgKind.REQUIRED:
        assert (spaced.given[0].value, spaced.rest) == ("7", 2)
    else:  # an optional argument is never the next word
        assert (spaced.given[0].value, spaced.rest) == (None, 1)


WORDS = st.sampled_from(
    [
        "--gpus=2", "-G", "4", "--gres=gpu:a100:2", "--gres=gpu:0", "-N", "2-3", "--nodes=0",
        "--ntasks=3", "--ntasks-per-node=2", "--gpus-per-task=1", "-t", "1-", "--time=x",
        "--array=0-9%2", "--array=1-", "hetjob", ":", "#", "'", '"', "\\", "--", "-",
        "--exclusive", "user", "--export=A=1,B", "--export=1x=2", "-kset",
        "--tres-per-task=gres/gpu=2",
        "--gpus-per-node=h100:8", "--gres=gpu:x:y:z", "--gpus=a:b:c", "--nodes=1k",
        "--dependency=", "--kill-on-invalid-dep=maybe", "-J", "=", "--mem", "--gp",
    ]
)  # fmt: skip


@given(st.lists(st.lists(WORDS, max_size=6), max_size=5), st.lists(WORDS, max_size=5))
def test_any_directives_give_a_request_or_an_sbatch_error(lines, argv):
    """A hostile script never crashes the reader: a request the API takes, or an error."""
    script = "#!/bin/bash\n" + "".join(f"#SBATCH {' '.join(words)}\n" for words in lines)
    try:
        cli = parse_command_line([*argv, "job.sh"])
        submission = read_submission(cli, script, {})
    except SbatchError:
        return
    JobSubmit.model_validate(submission.body)
