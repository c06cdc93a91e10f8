"""Batch scripts in the styles of HPC centres' user guides and ML training repositories,
each with the exact request (or the exact error) sbatch's semantics give.

A case's `body` is the request without `script` (always the script itself) and with
`name` "job.sh" and `command` [] unless it says otherwise. `argv` is the command line
after `arkwright sbatch` (default: just the script). `env` is the SBATCH_* environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NO_TIME = "no --time: the pool's default time limit applies (the server says which)"
CPU = "CPUs and memory are not scheduled by Arkwright (whole GPUs are)"
NOT_SHAPED = "Arkwright places the same GPUs on every node"


@dataclass(frozen=True)
class Case:
    id: str
    script: str
    body: dict | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    argv: tuple[str, ...] = ("job.sh",)
    env: dict[str, str] = field(default_factory=dict)


def job(**fields) -> dict:
    return {"name": "job.sh", **fields, "command": fields.get("command", [])}


CASES = [
    # --- multi-node training --------------------------------------------------------
    Case(
        "perlmutter-ddp-gpus-per-task",
        "#!/bin/bash\n#SBATCH -A m1234_g\n#SBATCH -C gpu\n#SBATCH -q regular\n"
        "#SBATCH -t 00:30:00\n#SBATCH -N 2\n#SBATCH --ntasks-per-node=4\n#SBATCH -c 32\n"
        "#SBATCH --gpus-per-task=1\n#SBATCH --gpu-bind=none\n\n"
        'export SLURM_CPU_BIND="cores"\nsrun python train.py\n',
        job(
            gpus=8,
            nodes=2,
            time="00:30:00",
            account="m1234_g",
            qos="regular",
            constraint="gpu",
        ),
        [
            f"line 8: --cpus-per-task=32 ignored: {CPU}",
            "line 10: --gpu-bind=none ignored: task binding is srun's, inside the job",
        ],
    ),
    Case(
        "torchrun-one-task-per-node",
        "#!/bin/bash\n#SBATCH --job-name=llama-pretrain\n#SBATCH --nodes=4\n"
        "#SBATCH --ntasks-per-node=1\n#SBATCH --gpus-per-node=8\n#SBATCH --cpus-per-task=96\n"
        "#SBATCH --time=2-00:00:00\n#SBATCH --partition=gpu\n"
        "#SBATCH --output=logs/%x-%j.out\n#SBATCH --exclusive\n\n"
        "head=$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)\n"
        "srun torchrun --nnodes 4 --nproc_per_node 8 --rdzv_endpoint $head:29500 train.py\n",
        job(
            name="llama-pretrain",
            gpus=32,
            nodes=4,
            time="2-00:00:00",
            partition="gpu",
            output="logs/%x-%j.out",
        ),
        [
            f"line 6: --cpus-per-task=96 ignored: {CPU}",
            "line 10: --exclusive ignored: GPUs are never shared; whole nodes above one node",
        ],
    ),
    Case(
        "torchrun-ntasks-derives-nodes",
        "#!/bin/bash\n#SBATCH --ntasks=16\n#SBATCH --ntasks-per-node=8\n"
        "#SBATCH --gpus-per-task=1\n#SBATCH --time=04:00:00\nsrun python -u ddp.py\n",
        job(gpus=16, nodes=2, time="04:00:00"),
    ),
    Case(
        "lightning-gres-per-node",
        "#!/bin/bash -l\n#SBATCH --nodes=2\n#SBATCH --gres=gpu:4\n"
        "#SBATCH --ntasks-per-node=4\n#SBATCH --mem=0\n#SBATCH --time=0-02:00:00\n"
        "#SBATCH --signal=SIGUSR1@90\n\nsrun python train.py trainer.num_nodes=2\n",
        job(gpus=8, nodes=2, time="02:00:00"),
        [
            f"line 5: --mem=0 ignored: {CPU}",
            "line 7: --signal=SIGUSR1@90 ignored: Arkwright preempts by its own checkpoint "
            "interval",
        ],
    ),
    Case(
        "deepspeed-gres-typed-h100",
        "#!/bin/bash\n#SBATCH -J ds-zero3\n#SBATCH -N 4\n#SBATCH --gres=gpu:h100:8\n"
        "#SBATCH -t 1-12\n#SBATCH -p hopper\n#SBATCH -A ai-lab\n"
        "srun deepspeed train.py\n",
        job(
            name="ds-zero3",
            gpus=32,
            nodes=4,
            gpu_type=["H100"],
            time="1-12:00:00",
            partition="hopper",
            account="ai-lab",
        ),
    ),
    Case(
        "mpi-ntasks-gpus-per-task-no-nodes",
        "#!/bin/bash\n#SBATCH --ntasks=4\n#SBATCH --gpus-per-task=2\n#SBATCH -t 60\n"
        "srun ./lammps -in in.lj\n",
        job(gpus=8, time="01:00:00"),
    ),
    Case(
        "nodes-and-ntasks-split-evenly",
        "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --ntasks=8\n#SBATCH --gpus-per-task=1\n"
        "#SBATCH -t 10\nsrun ./a.out\n",
        job(gpus=8, nodes=2, time="00:10:00"),
    ),
    Case(
        "tres-per-task-gpus",
        "#!/bin/bash\n#SBATCH --ntasks=4\n#SBATCH --tres-per-task=gres/gpu:1,cpu=8\n"
        "#SBATCH -t 5\nsrun ./a.out\n",
        job(gpus=4, time="00:05:00"),
        ["line 3: --tres-per-task=cpu=8: Arkwright does not count it"],
    ),
    Case(
        "gpus-total-over-nodes",
        "#!/bin/bash\n#SBATCH --gpus=h100:8\n#SBATCH --nodes=2\n#SBATCH -t 30\nsrun x\n",
        job(gpus=8, nodes=2, gpu_type=["H100"], time="00:30:00"),
    ),
    Case(
        "gpus-total-alone-arkwright-chooses",
        "#!/bin/bash\n#SBATCH --gpus=8\n#SBATCH -t 30\npython big.py\n",
        job(gpus=8, time="00:30:00"),
    ),
    Case(
        "gpus-and-per-node-agree",
        "#!/bin/bash\n#SBATCH -N 2 --gpus=8 --gpus-per-node=4 -t 5\nsrun x\n",
        job(gpus=8, nodes=2, time="00:05:00"),
    ),
    # --- single GPU and small jobs ----------------------------------------------------
    Case(
        "python-shebang",
        "#!/usr/bin/env python3\n#SBATCH --gpus=2\n#SBATCH --time=45\n"
        "import torch\nprint(torch.cuda.device_count())\n",
        job(gpus=2, time="00:45:00"),
    ),
    Case(
        "isambard-site-partition-and-account",
        "#!/bin/bash -l\n#SBATCH --job-name=fold\n#SBATCH --account=brics.a5k\n"
        "#SBATCH --partition=workq\n#SBATCH --gpus=4\n#SBATCH --time=12:00:00\n"
        "module load cudatoolkit\npython fold.py\n",
        job(name="fold", gpus=4, time="12:00:00", partition="workq", account="brics.a5k"),
    ),
    Case(
        "princeton-array-with-throttle",
        "#!/bin/bash\n#SBATCH --job-name=array-job\n#SBATCH --output=slurm-%A.%a.out\n"
        "#SBATCH --error=slurm-%A.%a.err\n#SBATCH --nodes=1\n#SBATCH --ntasks=1\n"
        "#SBATCH --cpus-per-task=1\n#SBATCH --mem-per-cpu=4G\n#SBATCH --gres=gpu:1\n"
        "#SBATCH --time=00:01:00\n#SBATCH --array=0-4%2\n#SBATCH --mail-type=all\n"
        "#SBATCH --mail-user=<YourNetID>@princeton.edu\n\n"
        'echo "My SLURM_ARRAY_TASK_ID is $SLURM_ARRAY_TASK_ID."\n',
        job(
            name="array-job",
            gpus=1,
            nodes=1,
            time="00:01:00",
            array="0-4%2",
            output="slurm-%A.%a.out",
            error="slurm-%A.%a.err",
        ),
        [
            f"line 7: --cpus-per-task=1 ignored: {CPU}",
            f"line 8: --mem-per-cpu=4G ignored: {CPU}",
            "line 12: --mail-type=all ignored: Arkwright sends no mail",
            "line 13: --mail-user=<YourNetID>@princeton.edu ignored: Arkwright sends no mail",
        ],
    ),
    Case(
        "hyperparameter-sweep-array-list-and-step",
        "#!/bin/bash\n#SBATCH -J sweep\n#SBATCH -a 1,3,5,10-20:5%3\n#SBATCH -G 1\n"
        "#SBATCH -t 20\npython sweep.py --seed $SLURM_ARRAY_TASK_ID\n",
        job(name="sweep", gpus=1, time="00:20:00", array="1,3,5,10-20:5%3"),
    ),
    Case(
        "gres-without-count-is-one-per-node",
        "#!/bin/bash\n#SBATCH -N 2\n#SBATCH --gres=gpu\n#SBATCH -t 5\nsrun x\n",
        job(gpus=2, nodes=2, time="00:05:00"),
    ),
    Case(
        "gres-type-without-count",
        "#!/bin/bash\n#SBATCH --gres=gpu:a100\n#SBATCH -t 5\npython x.py\n",
        job(gpus=1, nodes=1, gpu_type=["A100"], time="00:05:00"),
    ),
    Case(
        "gres-site-type-goes-to-gres-type",
        "#!/bin/bash\n#SBATCH --gres=gpu:tesla_v100:2\n#SBATCH -t 5\npython x.py\n",
        job(gpus=2, nodes=1, gres_type="tesla_v100", time="00:05:00"),
    ),
    Case(
        "gres-with-other-resources",
        "#!/bin/bash\n#SBATCH --gres=gpu:2,nvme:100\n#SBATCH -t 5\npython x.py\n",
        job(gpus=2, nodes=1, time="00:05:00"),
        ["line 2: --gres=nvme:100: not a GPU; Arkwright does not count it"],
    ),
    Case(
        "gpus-per-node-typed-case-insensitive",
        "#!/bin/bash\n#SBATCH --gpus-per-node=Gh200:4\n#SBATCH -t 1-06:30\n#SBATCH -A nhs\n"
        "python fold.py\n",
        job(gpus=4, nodes=1, gpu_type=["GH200"], time="1-06:30:00", account="nhs"),
    ),
    Case(
        "qos-and-constraint-mapped-raw",
        "#!/bin/bash\n#SBATCH --qos=high --constraint='a100&80gb' --gpus=1 -t 5\npython x.py\n",
        job(gpus=1, time="00:05:00", qos="high", constraint="a100&80gb"),
    ),
    # --- directive reading -----------------------------------------------------------
    Case(
        "indented-sbatch-is-a-comment",
        "#!/bin/bash\n#SBATCH --gpus=1\n  #SBATCH --gpus=8\n\t#SBATCH --time=5\n"
        "#SBATCH -t 10\npython x.py\n",
        job(gpus=1, time="00:10:00"),
    ),
    Case(
        "tab-before-comment",
        "#!/bin/bash\n#SBATCH --output=run.log\t# logs here\n#SBATCH --gpus=1 -t 5\necho\n",
        job(gpus=1, time="00:05:00", output="run.log"),
    ),
    Case(
        "hash-inside-a-word-ends-the-line",
        "#!/bin/bash\n#SBATCH --job-name=exp#1 --gpus=8\n#SBATCH --gpus=1 -t 5\necho\n",
        job(name="exp", gpus=1, time="00:05:00"),
    ),
    Case(
        "quoted-hash-is-kept",
        "#!/bin/bash\n#SBATCH --job-name='exp #1' --gpus=1 -t 5\necho\n",
        job(name="exp #1", gpus=1, time="00:05:00"),
    ),
    Case(
        "reading-stops-at-first-command",
        "#!/bin/bash\n# set up\n\n#SBATCH --gpus=1\n#SBATCH -t 5\nmodule load cuda\n"
        "#SBATCH --gpus=64\n",
        job(gpus=1, time="00:05:00"),
    ),
    Case(
        "value-from-the-next-line-as-sbatch",
        "#!/bin/bash\n#SBATCH --gpus=1 -t 5 --job-name\n#SBATCH -N2\necho\n",
        job(name="-N2", gpus=1, time="00:05:00"),
    ),
    Case(
        "old-slurm-magic-warned",
        "#!/bin/bash\n#SLURM --gpus=1\n#SBATCH -t 5\necho\n",
        job(gpus=1, time="00:05:00"),
        ["line 2: change #SLURM to #SBATCH (sbatch reads it, with an error)"],
    ),
    Case(
        "abbreviated-long-options",
        "#!/bin/bash\n#SBATCH --part=gpu --gpus-per-n=2 --job=x --ti=5\necho\n",
        error="line 2: option '--ti=5' is ambiguous; possibilities: '--time' '--time-min'",
    ),
    Case(
        "abbreviation-tim-still-ambiguous",
        "#!/bin/bash\n#SBATCH --part=gpu --gpus-per-n=2 --job=x --tim=5\necho\n",
        error="line 2: option '--tim=5' is ambiguous; possibilities: '--time' '--time-min'",
    ),
    Case(
        "unique-abbreviations",
        "#!/bin/bash\n#SBATCH --part=gpu --gpus-per-n=2 --job=x --time=5\necho\n",
        job(name="x", gpus=2, nodes=1, time="00:05:00", partition="gpu"),
    ),
    Case(
        "flags-take-no-value",
        "#!/bin/bash\n#SBATCH --oversubscribe --contiguous --get-user-env -k --requeue\n"
        "#SBATCH --no-requeue -sO --gpus=1 -t 5\necho\n",
        job(gpus=1, time="00:05:00"),
        [
            "line 3: --oversubscribe ignored: GPUs are never shared",
            "line 2: --contiguous ignored: Arkwright chooses the nodes",
            "line 2: --get-user-env ignored: the job's environment is Arkwright's, not a login's",
            "line 2: --no-kill ignored: a gang that loses a node is requeued or failed whole",
            "line 2: --requeue ignored: requeue after preemption is Arkwright's policy",
            "line 3: --no-requeue ignored: requeue after preemption is Arkwright's policy",
            f"line 3: --overcommit ignored: {CPU}",
        ],
    ),
    Case(
        "optional-arguments-need-equals",
        "#!/bin/bash\n#SBATCH --gpus=1 -t 5\n#SBATCH --exclusive user\necho\n",
        error="line 3: Invalid directive found in batch script: user",
    ),
    Case(
        "optional-arguments-with-equals",
        "#!/bin/bash\n#SBATCH --exclusive=user --nice=10 --get-user-env=10L --gpus=1 -t 5\n",
        job(gpus=1, time="00:05:00"),
        [
            "line 2: --exclusive=user ignored: GPUs are never shared; whole nodes above one node",
            "line 2: --nice=10 ignored: order is the fair-share policy's; use --qos",
            "line 2: --get-user-env=10L ignored: the job's environment is Arkwright's, not a "
            "login's",
        ],
    ),
    Case(
        "short-optional-attached",
        "#!/bin/bash\n#SBATCH -kN2 --gpus=1\n",
        error="line 2: Invalid --no-kill specification",
    ),
    # --- heterogeneous jobs ----------------------------------------------------------
    Case(
        "hetjob-same-shape-sums",
        "#!/bin/bash\n#SBATCH --job-name=het\n#SBATCH --time=1:00:00\n"
        "#SBATCH --nodes=1 --gpus-per-node=4\n#SBATCH hetjob\n"
        "#SBATCH --nodes=2 --gpus-per-node=4\n"
        "srun --het-group=0 server : --het-group=1 worker\n",
        job(name="het", gpus=12, nodes=3, time="01:00:00"),
    ),
    Case(
        "hetjob-cpu-leader-from-slurm-docs",
        "#!/bin/bash\n#SBATCH --cpus-per-task=4 --mem-per-cpu=1g --ntasks=1\n"
        "#SBATCH hetjob\n#SBATCH --cpus-per-task=2 --mem-per-cpu=1g --ntasks=8 "
        "--gpus-per-task=1\nsrun run.app\n",
        job(gpus=8),
        [
            f"line 2: --cpus-per-task=4 ignored: {CPU}",
            f"line 2: --mem-per-cpu=1g ignored: {CPU}",
            f"line 4: --cpus-per-task=2 ignored: {CPU}",
            f"line 4: --mem-per-cpu=1g ignored: {CPU}",
            "hetjob component 1 asks for no GPUs; Arkwright does not schedule it separately "
            "(its tasks share the job's GPU nodes)",
            NO_TIME,
        ],
    ),
    Case(
        "packjob-deprecated-separator",
        "#!/bin/bash\n#SBATCH -G 2 -t 5\n#SBATCH packjob -G 2\necho\n",
        job(gpus=4, time="00:05:00"),
    ),
    Case(
        "hetjob-different-shapes-refused",
        "#!/bin/bash\n#SBATCH -N1 --gpus-per-node=4 -t 5\n#SBATCH hetjob\n"
        "#SBATCH -N2 --gpus-per-node=2\necho\n",
        error="hetjob components ask for different node shapes (4 per node on 1, 2 per node "
        "on 2); Arkwright runs a heterogeneous job as one request with the same GPUs on "
        "every node",
    ),
    Case(
        "hetjob-different-partitions-refused",
        "#!/bin/bash\n#SBATCH -p gpu -G 1 -t 5\n#SBATCH hetjob -p debug -G 1\necho\n",
        error="line 3: hetjob component 2 sets partition to 'debug', component 1 to 'gpu'; "
        "Arkwright runs a heterogeneous job as one request",
    ),
    Case(
        "hetjob-array-refused",
        "#!/bin/bash\n#SBATCH -a 1-3 -G 1 -t 5\n#SBATCH hetjob -G 1\necho\n",
        error="line 2: --array: heterogeneous job arrays are not supported",
    ),
    # --- command line ---------------------------------------------------------------
    Case(
        "command-line-overrides-script",
        "#!/bin/bash\n#SBATCH -t 60 -p gpu --gpus=1\necho\n",
        job(gpus=1, time="00:05:00", partition="debug"),
        argv=("-t", "5", "--partition=debug", "job.sh"),
    ),
    Case(
        "arguments-after-the-script-are-the-scripts",
        '#!/bin/bash\n#SBATCH --gpus=1 -t 5\npython train.py "$@"\n',
        job(gpus=1, time="00:05:00", command=["--epochs", "3", "-t", "99", "--", "x"]),
        argv=("job.sh", "--epochs", "3", "-t", "99", "--", "x"),
    ),
    Case(
        "script-path-names-the-job",
        "#!/bin/bash\n#SBATCH --gpus=1 -t 5\necho\n",
        job(name="train_gpt.sbatch", gpus=1, time="00:05:00"),
        argv=("runs/2026/train_gpt.sbatch",),
    ),
    Case(
        "stdin-script-is-named-sbatch",
        "#!/bin/bash\n#SBATCH --gpus=1 -t 5\necho\n",
        job(name="sbatch", gpus=1, time="00:05:00"),
        argv=(),
    ),
    Case(
        "environment-between-script-and-command-line",
        "#!/bin/bash\n#SBATCH -p gpu -A proj -G 1 -t 5\necho\n",
        job(gpus=1, time="00:05:00", partition="ampere", account="other"),
        argv=("-A", "other", "job.sh"),
        env={"SBATCH_PARTITION": "ampere", "SBATCH_ACCOUNT": "ignored-by-cli"},
    ),
    Case(
        "command-line-hetjob-groups",
        "#!/bin/bash\n#SBATCH -t 5\necho\n",
        job(gpus=6, nodes=3, time="00:05:00"),
        argv=("-N1", "--gpus-per-node=2", ":", "-N2", "--gpus-per-node=2", "job.sh"),
    ),
    Case(
        "command-line-unknown-option",
        "#!/bin/bash\n#SBATCH -G 1\n",
        error="command line: unrecognized option '--gpu-type=h100'",
        argv=("--gpu-type=h100", "job.sh"),
    ),
    # --- time ------------------------------------------------------------------------
    Case(
        "time-unlimited",
        "#!/bin/bash\n#SBATCH --time=UNLIMITED -G 1\necho\n",
        job(gpus=1, time="UNLIMITED"),
    ),
    Case(
        "time-zero-is-unlimited",
        "#!/bin/bash\n#SBATCH -t 0 -G 1\necho\n",
        job(gpus=1, time="UNLIMITED"),
    ),
    Case(
        "time-minutes-seconds-rounds-up",
        "#!/bin/bash\n#SBATCH -t 30:15 -G 1\necho\n",
        job(gpus=1, time="00:31:00"),
    ),
    Case(
        "time-days-only",
        "#!/bin/bash\n#SBATCH -t 3- -G 1\necho\n",
        job(gpus=1, time="3-00:00:00"),
    ),
    Case(
        "no-time-warns",
        "#!/bin/bash\n#SBATCH -G 1\necho\n",
        job(gpus=1),
        [NO_TIME],
    ),
    Case(
        "bad-time",
        "#!/bin/bash\n#SBATCH --time=soon\n#SBATCH --gpus=1\n",
        error="line 2: Invalid --time specification",
    ),
    # --- dependencies, environment, names ---------------------------------------------
    Case(
        "dependency-chain",
        "#!/bin/bash\n#SBATCH -d afterok:j-0000012:j-0000013 --kill-on-invalid-dep=yes\n"
        "#SBATCH -G 1 -t 5\necho\n",
        job(
            gpus=1,
            time="00:05:00",
            dependency="afterok:j-0000012:j-0000013",
            kill_on_invalid_dep=True,
        ),
    ),
    Case(
        "dependency-singleton",
        "#!/bin/bash\n#SBATCH --dependency=singleton -J nightly -G 1 -t 5\necho\n",
        job(name="nightly", gpus=1, time="00:05:00", dependency="singleton"),
    ),
    Case(
        "export-values-become-env",
        "#!/bin/bash\n#SBATCH --export=ALL,WANDB_MODE=offline,HOME -G 1 -t 5\necho\n",
        job(gpus=1, time="00:05:00", env={"WANDB_MODE": "offline"}),
        [
            "line 2: --export=ALL: Arkwright does not copy your environment into the job; "
            "give NAME=value items",
            "line 2: --export=HOME: Arkwright does not copy your environment; give HOME=value",
        ],
    ),
    Case(
        "export-none",
        "#!/bin/bash\n#SBATCH --export=NONE -G 1 -t 5\necho\n",
        job(gpus=1, time="00:05:00"),
    ),
    Case(
        "chdir-warned",
        "#!/bin/bash\n#SBATCH -D /scratch/me/run1 -G 1 -t 5\necho\n",
        job(gpus=1, time="00:05:00"),
        ["line 2: --chdir=/scratch/me/run1 ignored: jobs start in their Arkwright run directory"],
    ),
    Case(
        "nodes-range-uses-minimum",
        "#!/bin/bash\n#SBATCH --nodes=2-4 --gpus-per-node=2 -t 5\nsrun x\n",
        job(gpus=4, nodes=2, time="00:05:00"),
        ["line 2: --nodes=2-4: Arkwright asks for the minimum, 2"],
    ),
    Case(
        "more-nodes-than-tasks-cut-as-sbatch",
        "#!/bin/bash\n#SBATCH --nodes=4 --ntasks=2 --gpus-per-task=1 -t 5\nsrun x\n",
        job(gpus=2, nodes=2, time="00:05:00"),
        ["line 2: can't run 2 processes on 4 nodes, setting nnodes to 2"],
    ),
    # --- refused forms ---------------------------------------------------------------
    Case(
        "crlf-refused",
        "#!/bin/bash\r\n#SBATCH -J win\r\n#SBATCH -G 2\r\npython x.py\r\n",
        error="Batch script contains DOS line breaks (\\r\\n) instead of expected UNIX line "
        "breaks (\\n) (first on line 1; convert it with dos2unix)",
    ),
    Case(
        "no-shebang-refused",
        "#SBATCH --gpus=1\npython x.py\n",
        error="This does not look like a batch script.  The first line must start with #! "
        "followed by the path to an interpreter.  For instance: #!/bin/sh",
    ),
    Case("empty-script", "", error="Batch script is empty!"),
    Case("whitespace-script", " \n\n", error="Batch script contains only whitespace!"),
    Case(
        "nul-refused",
        "#!/bin/bash\n#SBATCH -G 1\necho \x00\n",
        error="The Slurm controller does not allow scripts that contain a NULL character '\\0'.",
    ),
    Case(
        "unknown-option",
        "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --frobnicate=3\n",
        error="line 3: unrecognized option '--frobnicate=3'",
    ),
    Case(
        "ambiguous-gpu",
        "#!/bin/bash\n#SBATCH --gpu=1\n",
        error="line 2: option '--gpu=1' is ambiguous; possibilities: '--gpu-bind' "
        "'--gpu-freq' '--gpus' '--gpus-per-node' '--gpus-per-socket' '--gpus-per-task'",
    ),
    Case(
        "invalid-short-option",
        "#!/bin/bash\n#SBATCH -G 1\n#SBATCH -Z\n",
        error="line 3: invalid option -- 'Z'",
    ),
    Case(
        "flag-with-a-value",
        "#!/bin/bash\n#SBATCH --contiguous=yes -G 1\n",
        error="line 2: option '--contiguous' doesn't allow an argument",
    ),
    Case(
        "missing-value-at-the-end",
        "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --job-name\n",
        error="line 3: option '--job-name' requires an argument",
    ),
    Case(
        "stray-word",
        "#!/bin/bash\n#SBATCH --job-name=a\tb -G 1\n",
        error="line 2: Invalid directive found in batch script: b",
    ),
    Case(
        "unmatched-quote",
        '#!/bin/bash\n#SBATCH -G 1 --job-name="unclosed\n',
        error='line 2: Unmatched `"` in [ --job-name="unclosed]',
    ),
    Case(
        "leading-colon",
        "#!/bin/bash\n#SBATCH :\n",
        error="line 2: Unexpected `:` in [:]",
    ),
    Case(
        "gres-gpu-zero",
        "#!/bin/bash\n#SBATCH --gres=gpu:0\n#SBATCH -t 5\npython cpu.py\n",
        error="no GPUs requested (--gres=gpu:0 asks for none): add --gpus=N, "
        "--gpus-per-node=N or --gres=gpu:N (Arkwright schedules GPU work)",
    ),
    Case(
        "no-gpus",
        "#!/bin/bash\n#SBATCH --mem=8G\npython cpu.py\n",
        error="no GPUs requested: add --gpus=N, --gpus-per-node=N or --gres=gpu:N "
        "(Arkwright schedules GPU work)",
    ),
    Case(
        "gpus-not-divisible-over-nodes",
        "#!/bin/bash\n#SBATCH -N 2 --gpus=5\n",
        error=f"line 2: --gpus=5 does not split evenly over 2 nodes; {NOT_SHAPED}",
    ),
    Case(
        "tasks-uneven-over-nodes",
        "#!/bin/bash\n#SBATCH --ntasks=6 --ntasks-per-node=4 --gpus-per-task=1\n",
        error="line 2: 6 tasks at most 4 per node leave 2 nodes with different task counts; "
        f"{NOT_SHAPED} (make --ntasks a multiple of --ntasks-per-node)",
    ),
    Case(
        "gpu-options-disagree",
        "#!/bin/bash\n#SBATCH -N 2 --gpus=8\n#SBATCH --gpus-per-task=1 --ntasks=4\n",
        error="the GPU options disagree (line 3: 4 GPUs on 2 nodes; line 2: 8 GPUs on 2 nodes)",
    ),
    Case(
        "gres-and-gpus-per-node-exclusive",
        "#!/bin/bash\n#SBATCH --gres=gpu:2 --gpus-per-node=2\n",
        error="line 2: --gpus-per-node and --gres=gpu are mutually exclusive.",
    ),
    Case(
        "two-gpu-types",
        "#!/bin/bash\n#SBATCH --gres=gpu:a100:1,gpu:h100:1\n",
        error="line 2: --gres=gpu:a100:1,gpu:h100:1: names GPUs more than once; Arkwright "
        "asks for one GPU model per job",
    ),
    Case(
        "unknown-type-and-constraint",
        "#!/bin/bash\n#SBATCH --gres=gpu:a100_80gb:1 -C ib -t 5\n",
        job(gpus=1, nodes=1, gres_type="a100_80gb", constraint="ib", time="00:05:00"),
    ),
    Case(
        "bad-array",
        "#!/bin/bash\n#SBATCH --array=9-0\n#SBATCH --gpus=1\n",
        error="line 2: Invalid job array specification '9-0' (use e.g. 0-15, 1,3,5, 0-15:4 "
        "or 0-99%10)",
    ),
    Case(
        "bad-node-count",
        "#!/bin/bash\n#SBATCH --nodes=two\n#SBATCH --gpus-per-node=1\n",
        error='line 2: "two" is not a valid node count',
    ),
    Case(
        "zero-tasks",
        "#!/bin/bash\n#SBATCH --ntasks=0 -G 1\n",
        error='line 2: Invalid numeric value "0" for --ntasks.',
    ),
    Case(
        "begin-refused",
        "#!/bin/bash\n#SBATCH --begin=now+1hour -G 1\n",
        error="line 2: --begin: Arkwright cannot hold a job until a time (`now` is read)",
    ),
    Case(
        "hold-refused",
        "#!/bin/bash\n#SBATCH -H -G 1\n",
        error="line 2: --hold: Arkwright cannot hold a job; submit it when it should run",
    ),
    Case(
        "container-refused",
        "#!/bin/bash\n#SBATCH --container=/images/pytorch -G 1\n",
        error="line 2: --container: Arkwright does not run OCI containers; the job would "
        "run without it",
    ),
    Case(
        "gpus-per-socket-refused",
        "#!/bin/bash\n#SBATCH --gpus-per-socket=2 -G 1\n",
        error="line 2: --gpus-per-socket: nodes have no socket layout in Arkwright",
    ),
    Case(
        "wrap-with-a-script-refused",
        "#!/bin/bash\n",
        error="command line: Script arguments not permitted with --wrap option",
        argv=("--wrap=nvidia-smi", "-G", "1", "job.sh"),
    ),
]
