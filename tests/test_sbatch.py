"""#SBATCH parsing against scripts written the way HPC centres document them."""

import pytest

from arkwright.sbatch import SbatchError, parse_script

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


def one(text, *overrides):
    job = parse_script(text, list(overrides))
    return job, job.submissions("job.sh", text)


def test_multi_node_training_script():
    job, [body] = one(LLM_TRAINING)
    assert body["name"] == "llama-ft" and body["gpus"] == 8 and body["tenant"] == "research"
    assert body["time"] == "1-12:00:00" and body["sites"] == ["isambard-ai"]
    assert body["env"]["SLURM_STDOUT_PATTERN"] == "logs/%x-%j.out"
    assert body["command"][:2] == ["bash", "-c"]
    # --mem is reported and ignored; the #SBATCH after the first command is not read.
    assert job.warnings == ["line 11: --mem is not used by Arkwright; ignored"]


def test_gres_short_options_and_typed_gpus():
    job, [body] = one(GRES_STYLE)
    assert (body["name"], body["gpus"], body["gpu_type"]) == ("vision", 2, ["H100"])
    assert body["time"] == "90" and body["tenant"] == "nhs" and not job.warnings


def test_array_expands_to_one_job_per_task():
    _, bodies = one(ARRAY)
    assert [b["name"] for b in bodies] == ["sweep_0", "sweep_4", "sweep_8", "sweep_12"]
    assert [b["env"]["SLURM_ARRAY_TASK_ID"] for b in bodies] == ["0", "4", "8", "12"]


def test_command_line_overrides_the_script():
    _, [body] = one(LLM_TRAINING, "--nodes", "4", "-t", "2:00:00", "--partition=nebius-london")
    assert body["gpus"] == 16 and body["time"] == "2:00:00"
    assert body["sites"] == ["nebius-london"]
    _, [body] = one(GRES_STYLE, "--gpus=b200:8")
    assert body["gpus"] == 8 and body["gpu_type"] == ["B200"]  # --gpus wins over --gres


@pytest.mark.parametrize(
    "script, needle",
    [
        ("#!/bin/bash\n#SBATCH --time=soon\n#SBATCH --gpus=1\n", "line 2: --time: not a duration"),
        ("#!/bin/bash\n#SBATCH --gres=gpu:z900:2\n", "line 2: unknown GPU type 'z900'"),
        (
            "#!/bin/bash\n#SBATCH --nodes=two\n#SBATCH --gpus-per-node=1\n",
            "line 2: --nodes: expected a positive number",
        ),
        ("#!/bin/bash\n#SBATCH --job-name\n", "line 2: --job-name needs a value"),
        (
            "#!/bin/bash\n#SBATCH --array=9-0\n#SBATCH --gpus=1\n",
            "line 2: --array: '9-0' is an empty",
        ),
        ("#!/bin/bash\n#SBATCH --mem=8G\npython cpu.py\n", "no GPUs requested"),
        ("#!/bin/bash\n#SBATCH --gres=license:matlab\n", "asks for no GPUs"),
        ('#!/bin/bash\n#SBATCH --job-name="unclosed\n', "line 2: cannot read"),
    ],
)
def test_bad_scripts_name_the_line(script, needle):
    with pytest.raises(SbatchError, match=needle):
        one(script)


def test_unknown_directives_are_warned_with_their_line():
    job, _ = one("#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --frobnicate=3\n")
    assert job.warnings == ["line 3: unknown option --frobnicate; ignored"]


# (what the script is, the script, the submissions it must become: name, GPUs, GPU type,
# time limit in seconds, programme). Written the way centre user guides show them.
REAL_WORLD = [
    (
        "whole nodes by --gres and tasks per GPU",
        "#!/bin/bash\n#SBATCH --job-name=md-run\n#SBATCH --nodes=4\n"
        "#SBATCH --ntasks-per-node=4\n#SBATCH --gres=gpu:4\n#SBATCH --time=2-00\n"
        "#SBATCH --account=research\n#SBATCH --exclusive\n\nsrun gmx mdrun\n",
        [("md-run", 16, None, 2 * 86400, "research")],
    ),
    (
        "minutes:seconds and a blank line inside the directive block",
        "#!/bin/bash\n\n#SBATCH -J quick\n\n#SBATCH --gpus=1\n#SBATCH --time=30:00\necho ok\n",
        [("quick", 1, None, 1800, None)],
    ),
    (
        "days-hours:minutes with a typed --gpus-per-node",
        "#!/bin/bash\n#SBATCH --job-name=fold\n#SBATCH --nodes=1\n"
        "#SBATCH --gpus-per-node=gh200:4\n#SBATCH --time=1-06:30\n#SBATCH -A nhs\n"
        "python fold.py\n",
        [("fold", 4, ["GH200"], 86400 + 6 * 3600 + 30 * 60, "nhs")],
    ),
    (
        "an array given as a list",
        "#!/bin/bash\n#SBATCH --job-name=ens\n#SBATCH --gpus=2\n#SBATCH -t 10\n"
        "#SBATCH --array=1,3,5\npython run.py\n",
        [
            ("ens_1", 2, None, 600, None),
            ("ens_3", 2, None, 600, None),
            ("ens_5", 2, None, 600, None),
        ],
    ),
    (
        "Windows line endings and short options in the space form",
        "#!/bin/bash\r\n#SBATCH -J win\r\n#SBATCH -G 2\r\n#SBATCH -t 1:00:00\r\npython x.py\r\n",
        [("win", 2, None, 3600, None)],
    ),
]


@pytest.mark.parametrize(
    "script, expected", [case[1:] for case in REAL_WORLD], ids=[case[0] for case in REAL_WORLD]
)
def test_real_world_scripts(script, expected):
    from arkwright.timefmt import parse_duration

    _, bodies = one(script)
    got = [
        (b["name"], b["gpus"], b.get("gpu_type"), parse_duration(b["time"]), b.get("tenant"))
        for b in bodies
    ]
    assert got == expected
