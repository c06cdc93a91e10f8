"""The scripts of the first reader's tests (tests/test_sbatch.py), where their meaning
still holds under sbatch's semantics. What changed, and why: options after the script
are now the script's arguments (they go before it); an array is sent whole (the server
makes its tasks); an unknown GPU type is a hint for the fleet (sent as `gres_type`);
an unknown option is an error, as in sbatch; DOS line endings are refused, as in sbatch;
--gpus with a --gres that disagrees is refused rather than one silently winning.
"""

from __future__ import annotations

import pytest

from arkwright.sbatch import SbatchError, parse_command_line, read_submission

LLM_TRAINING = """#!/bin/bash
#SBATCH --job-name=llama-ft
#SBATCH --account=research
#SBATCH --partition=isambard-ai
#SBATCH --nodes=2
#SBATCH --gpus-per-node=4
#SBATCH --ntasks-per-node=4
#SBATCH --time=1-12:00:00
#SBATCH --output=logs/%x-%j.out
#SBATCH --error=logs/%x-%j.err
#SBATCH --mem=0

module load cuda
srun python train.py
#SBATCH --gpus=64
"""

GRES_STYLE = """#!/bin/bash -l
# A comment before the directives is fine
#SBATCH -J vision
#SBATCH -N 1
#SBATCH --gres=gpu:h100:2   # two H100s
#SBATCH -t 90
#SBATCH -A nhs
python infer.py
"""

ARRAY = """#!/bin/bash
#SBATCH --job-name sweep
#SBATCH --gpus=1
#SBATCH --time 00:30:00
#SBATCH --array=0-15:4%2
python sweep.py --seed $SLURM_ARRAY_TASK_ID
"""


def read(text: str, *argv: str):
    cli = parse_command_line([*argv, "job.sh"])
    submission = read_submission(cli, text, {})
    body = dict(submission.body)
    assert body.pop("script") == text
    return body, submission.warnings


def test_multi_node_training_script() -> None:
    body, warnings = read(LLM_TRAINING)
    assert body == {
        "name": "llama-ft",
        "gpus": 8,
        "nodes": 2,
        "time": "1-12:00:00",
        "partition": "isambard-ai",
        "account": "research",
        "output": "logs/%x-%j.out",
        "error": "logs/%x-%j.err",
        "command": [],
    }
    # --mem is reported and ignored; the #SBATCH after the first command is not read.
    assert warnings == [
        "line 11: --mem=0 ignored: CPUs and memory are not scheduled by Arkwright (whole GPUs are)"
    ]


def test_gres_short_options_and_typed_gpus() -> None:
    body, warnings = read(GRES_STYLE)
    assert body == {
        "name": "vision",
        "gpus": 2,
        "nodes": 1,
        "gpu_type": ["H100"],
        "time": "01:30:00",
        "account": "nhs",
        "command": [],
    }
    assert warnings == []


def test_array_is_sent_whole() -> None:
    body, _ = read(ARRAY)
    assert (body["name"], body["array"], body["gpus"]) == ("sweep", "0-15:4%2", 1)


def test_command_line_before_the_script_overrides_it() -> None:
    body, _ = read(LLM_TRAINING, "--nodes", "4", "-t", "2:00:00", "--partition=nebius-london")
    assert (body["gpus"], body["nodes"], body["time"]) == (16, 4, "02:00:00")
    assert body["partition"] == "nebius-london"


@pytest.mark.parametrize(
    "script, error",
    [
        (
            "#!/bin/bash\n#SBATCH --time=soon\n#SBATCH --gpus=1\n",
            "line 2: Invalid --time specification",
        ),
        (
            "#!/bin/bash\n#SBATCH --nodes=two\n#SBATCH --gpus-per-node=1\n",
            'line 2: "two" is not a valid node count',
        ),
        (
            "#!/bin/bash\n#SBATCH --job-name\n",
            "line 2: option '--job-name' requires an argument",
        ),
        (
            "#!/bin/bash\n#SBATCH --array=9-0\n#SBATCH --gpus=1\n",
            "line 2: Invalid job array specification '9-0' (use e.g. 0-15, 1,3,5, 0-15:4 or "
            "0-99%10)",
        ),
        (
            '#!/bin/bash\n#SBATCH --job-name="unclosed\n',
            'line 2: Unmatched `"` in [--job-name="unclosed]',
        ),
        (
            "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --frobnicate=3\n",
            "line 3: unrecognized option '--frobnicate=3'",
        ),
        (
            "#!/bin/bash\r\n#SBATCH -J win\r\n#SBATCH -G 2\r\n",
            "Batch script contains DOS line breaks (\\r\\n) instead of expected UNIX line "
            "breaks (\\n) (first on line 1; convert it with dos2unix)",
        ),
    ],
)
def test_bad_scripts_name_the_line(script: str, error: str) -> None:
    with pytest.raises(SbatchError) as caught:
        read(script)
    assert str(caught.value) == error


def test_a_generic_resource_that_is_not_a_gpu_asks_for_no_gpus() -> None:
    with pytest.raises(SbatchError, match=r"^no GPUs requested: "):
        read("#!/bin/bash\n#SBATCH --gres=license:matlab\n")


@pytest.mark.parametrize(
    "script, expected",
    [
        (
            "#!/bin/bash\n#SBATCH --job-name=md-run\n#SBATCH --nodes=4\n"
            "#SBATCH --ntasks-per-node=4\n#SBATCH --gres=gpu:4\n#SBATCH --time=2-00\n"
            "#SBATCH --account=research\n#SBATCH --exclusive\n\nsrun gmx mdrun\n",
            ("md-run", 16, 4, "2-00:00:00"),
        ),
        (
            "#!/bin/bash\n\n#SBATCH -J quick\n\n#SBATCH --gpus=1\n#SBATCH --time=30:00\necho ok\n",
            ("quick", 1, None, "00:30:00"),
        ),
        (
            "#!/bin/bash\n#SBATCH --job-name=ens\n#SBATCH --gpus=2\n#SBATCH -t 10\n"
            "#SBATCH --array=1,3,5\npython run.py\n",
            ("ens", 2, None, "00:10:00"),
        ),
    ],
)
def test_real_world_scripts(script: str, expected: tuple) -> None:
    body, _ = read(script)
    assert (body["name"], body["gpus"], body.get("nodes"), body["time"]) == expected
