"""Every option sbatch takes, with its argument kind and what Arkwright does with it.

The names, short forms and argument kinds are Slurm's (src/common/slurm_opt.c, the
options with an sbatch setter, as of Slurm 25.11). `--get-user-env` keeps the optional
argument it had until Slurm 24.11 so that older scripts (`--get-user-env=10L`) still
read. `--parse-only` is Arkwright's own. This table is the one owner of these facts:
the reader, the README's compatibility table and the tests all come from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ArgKind(Enum):
    """How getopt_long takes the option's value."""

    NONE = "none"  # a flag; `--flag=x` is an error
    REQUIRED = "required"  # `--opt=x`, `--opt x`, `-ox`, `-o x`
    OPTIONAL = "optional"  # only `--opt=x` or `-ox`; `--opt x` leaves x a non-option


class Handling(Enum):
    HONOURED = "honoured"  # Arkwright does what sbatch does
    MAPPED = "mapped"  # sent raw as a Slurm-world name; the fleet maps it
    WARNED = "warned"  # known, has no effect on Arkwright: a warning names it
    REFUSED = "refused"  # Arkwright cannot do it: an error names the reason


@dataclass(frozen=True)
class Option:
    name: str  # the long name, without "--"
    short: str | None
    arg: ArgKind
    handling: Handling
    note: str  # what Arkwright does (honoured, mapped) or why not (warned, refused)


N, R, OPT = ArgKind.NONE, ArgKind.REQUIRED, ArgKind.OPTIONAL
H, M, W, X = Handling.HONOURED, Handling.MAPPED, Handling.WARNED, Handling.REFUSED

_CPU = "CPUs and memory are not scheduled by Arkwright (whole GPUs are)"
_NODES = "Arkwright chooses the nodes"
_NOTIFY = "Arkwright sends no mail"
_BINDING = "task binding is srun's, inside the job"
_CONTAINER = "Arkwright does not run OCI containers; the job would run without it"
_ACCOUNTING = "Arkwright keeps its own accounting"
_NETWORK = "Arkwright places gangs by its own topology"

TABLE: tuple[Option, ...] = (
    Option("account", "A", R, M, "sent as `account`; the fleet maps it to a programme"),
    Option("acctg-freq", None, R, W, _ACCOUNTING),
    Option("array", "a", R, H, "sent as `array` (syntax checked here); `%N` throttles"),
    Option("autocomplete", None, R, X, "shell completion is not offered"),
    Option("batch", None, R, W, "batch-host features: " + _NODES),
    Option("bb", None, R, X, "Arkwright has no burst buffers"),
    Option("bbf", None, R, X, "Arkwright has no burst buffers"),
    Option("begin", "b", R, X, "Arkwright cannot hold a job until a time (`now` is read)"),
    Option("chdir", "D", R, W, "jobs start in their Arkwright run directory"),
    Option("cluster", None, R, W, "Arkwright is one fleet; use --partition for a site"),
    Option("cluster-constraint", None, R, W, "Arkwright is one fleet"),
    Option("clusters", "M", R, W, "Arkwright is one fleet; use --partition for a site"),
    Option("comment", None, R, W, "comments are not stored"),
    Option("consolidate-segments", None, N, W, _NETWORK),
    Option("constraint", "C", R, M, "sent as `constraint`; the fleet maps features to GPUs"),
    Option("container", None, R, X, _CONTAINER),
    Option("container-id", None, R, X, _CONTAINER),
    Option("context", None, R, W, "SELinux contexts are the site's"),
    Option("contiguous", None, N, W, _NODES),
    Option("core-spec", "S", R, W, _CPU),
    Option("cores-per-socket", None, R, W, _CPU),
    Option("cpu-freq", None, R, W, _CPU),
    Option("cpus-per-gpu", None, R, W, _CPU),
    Option("cpus-per-task", "c", R, W, _CPU),
    Option("deadline", None, R, W, "not enforced: the job is not removed at the deadline"),
    Option("delay-boot", None, R, W, "Arkwright does not reboot nodes"),
    Option("dependency", "d", R, H, "sent as `dependency` (after, afterok, singleton, ...)"),
    Option("distribution", "m", R, W, _BINDING),
    Option("error", "e", R, H, "sent as `error` (a filename pattern: %j %x %A %a %u %N)"),
    Option("exclude", "x", R, W, _NODES),
    Option("exclusive", None, OPT, W, "GPUs are never shared; whole nodes above one node"),
    Option("export", None, R, H, "NAME=value items become `env`; ALL, bare NAMEs: warned"),
    Option("export-file", None, R, W, "the submitting environment is not copied"),
    Option("external", None, N, X, "Arkwright runs the jobs it schedules"),
    Option("extra", None, R, W, _NODES),
    Option("extra-node-info", "B", R, W, _CPU),
    Option("get-user-env", None, OPT, W, "the job's environment is Arkwright's, not a login's"),
    Option("gid", None, R, X, "jobs run as the submitting user's mapped account"),
    Option("gpu-bind", None, R, W, _BINDING),
    Option("gpu-freq", None, R, W, "GPU clocks are the site's"),
    Option("gpus", "G", R, H, "the job's total GPUs; a TYPE: prefix is a GPU model"),
    Option("gpus-per-node", None, R, H, "GPUs per node: fixes the node shape"),
    Option("gpus-per-socket", None, R, X, "nodes have no socket layout in Arkwright"),
    Option("gpus-per-task", None, R, H, "times the tasks; with --ntasks-per-node, the shape"),
    Option("gres", None, R, H, "gpu[:TYPE][:N] per node; other resources are warned"),
    Option("gres-flags", None, R, W, _BINDING),
    Option("help", "h", N, H, "prints this command's help"),
    Option("hint", None, R, W, _CPU),
    Option("hold", "H", N, X, "Arkwright cannot hold a job; submit it when it should run"),
    Option("ignore-pbs", None, N, H, "#PBS lines are never read"),
    Option("input", "i", R, X, "Arkwright jobs read no standard input"),
    Option("job-name", "J", R, H, "sent as `name` (default: the script's file name)"),
    Option("kill-on-invalid-dep", None, R, H, "yes or no; sent as `kill_on_invalid_dep`"),
    Option("licenses", "L", R, W, "Arkwright does not count licences"),
    Option("mail-type", None, R, W, _NOTIFY),
    Option("mail-user", None, R, W, _NOTIFY),
    Option("mcs-label", None, R, W, "MCS labels are the site's"),
    Option("mem", None, R, W, _CPU),
    Option("mem-bind", None, R, W, _BINDING),
    Option("mem-per-cpu", None, R, W, _CPU),
    Option("mem-per-gpu", None, R, W, _CPU),
    Option("mem-update", None, R, W, _CPU),
    Option("mincpus", None, R, W, _CPU),
    Option("network", None, R, W, _NETWORK),
    Option("nice", None, OPT, W, "order is the fair-share policy's; use --qos"),
    Option("no-kill", "k", OPT, W, "a gang that loses a node is requeued or failed whole"),
    Option("no-requeue", None, N, W, "requeue after preemption is Arkwright's policy"),
    Option("nodefile", "F", R, W, _NODES),
    Option("nodelist", "w", R, W, _NODES),
    Option("nodes", "N", R, H, "the node count (a range or list: its minimum, warned)"),
    Option("ntasks", "n", R, H, "tasks, for --gpus-per-task and the node count"),
    Option("ntasks-per-core", None, R, W, _CPU),
    Option("ntasks-per-gpu", None, R, W, _BINDING),
    Option("ntasks-per-node", None, R, H, "tasks per node, for --gpus-per-task and nodes"),
    Option("ntasks-per-socket", None, R, W, _CPU),
    Option("ntasks-per-tres", None, R, W, _BINDING),
    Option("oom-kill-step", None, OPT, W, _CPU),
    Option("open-mode", None, R, W, "logs are always appended"),
    Option("output", "o", R, H, "sent as `output` (a filename pattern: %j %x %A %a %u %N)"),
    Option("overcommit", "O", N, W, _CPU),
    Option("oversubscribe", "s", N, W, "GPUs are never shared"),
    Option("parsable", None, N, H, "prints only the job id"),
    Option("parse-only", None, N, H, "Arkwright's: prints the request as JSON, offline"),
    Option("partition", "p", R, M, "sent as `partition`; the fleet maps it to pools"),
    Option("prefer", None, R, W, "soft features are not used; --constraint is"),
    Option("priority", None, R, W, "order is the fair-share policy's; use --qos"),
    Option("profile", None, R, W, _ACCOUNTING),
    Option("propagate", None, OPT, W, "resource limits are the site's"),
    Option("qos", "q", R, M, "sent as `qos`; the fleet maps it to a priority class"),
    Option("quiet", "Q", N, H, "no warnings are printed"),
    Option("reboot", None, N, W, "Arkwright does not reboot nodes"),
    Option("requeue", None, OPT, W, "requeue after preemption is Arkwright's policy"),
    Option("reservation", None, R, W, "Arkwright has no reservations"),
    Option("resources", None, R, W, "Arkwright does not count licences"),
    Option("resv-ports", None, OPT, W, "ports are not reserved"),
    Option("runtime", None, R, X, _CONTAINER),
    Option("segment", None, R, W, _NETWORK),
    Option("signal", None, R, W, "Arkwright preempts by its own checkpoint interval"),
    Option("sockets-per-node", None, R, W, _CPU),
    Option("spread-job", None, N, W, _NODES),
    Option("spread-segments", None, N, W, _NETWORK),
    Option("stepmgr", None, N, W, "job steps are srun's, inside the job"),
    Option("switches", None, R, W, _NETWORK),
    Option("tasks-per-node", None, R, H, "the same as --ntasks-per-node"),
    Option("test-only", None, N, H, "asks when the job would start; submits nothing"),
    Option("thread-spec", None, R, W, _CPU),
    Option("threads-per-core", None, R, W, _CPU),
    Option("time", "t", R, H, "sent as `time`; UNLIMITED, INFINITE, -1, 0: the maximum"),
    Option("time-min", None, R, W, "the time limit is not shortened to backfill"),
    Option("tmp", None, R, W, _CPU),
    Option("tres-bind", None, R, W, _BINDING),
    Option("tres-per-task", None, R, H, "gres/gpu[:TYPE]:N or =N counts as --gpus-per-task"),
    Option("uid", None, R, X, "jobs run as the submitting user's mapped account"),
    Option("usage", None, N, H, "prints this command's help"),
    Option("use-min-nodes", None, N, W, "a node range already asks for its minimum"),
    Option("verbose", "v", N, H, "accepted; prints nothing more"),
    Option("version", "V", N, H, "prints Arkwright's version"),
    Option("wait", "W", N, H, "waits for the job to end; exits with its exit code"),
    Option("wait-all-nodes", None, R, W, "nodes are up when a gang starts"),
    Option("wckey", None, R, W, _ACCOUNTING),
    Option("wrap", None, R, H, "the command becomes a #!/bin/sh script, as sbatch makes"),
)

BY_NAME: dict[str, Option] = {option.name: option for option in TABLE}
BY_SHORT: dict[str, Option] = {option.short: option for option in TABLE if option.short}

# sbatch reads these between the script and the command line (src/sbatch/opt.c env_vars);
# the options they stand for, which the table above says how Arkwright handles.
ENVIRONMENT: dict[str, str] = {
    "SBATCH_ACCOUNT": "account",
    "SBATCH_ARRAY_INX": "array",
    "SBATCH_ACCTG_FREQ": "acctg-freq",
    "SBATCH_BATCH": "batch",
    "SBATCH_CLUSTER_CONSTRAINT": "cluster-constraint",
    "SBATCH_CLUSTERS": "clusters",
    "SLURM_CLUSTERS": "clusters",
    "SBATCH_CONSTRAINT": "constraint",
    "SBATCH_CONTAINER": "container",
    "SBATCH_CORE_SPEC": "core-spec",
    "SBATCH_CPUS_PER_GPU": "cpus-per-gpu",
    "SBATCH_DISTRIBUTION": "distribution",
    "SBATCH_EXCLUSIVE": "exclusive",
    "SBATCH_EXPORT": "export",
    "SBATCH_GET_USER_ENV": "get-user-env",
    "SBATCH_GRES": "gres",
    "SBATCH_GPUS": "gpus",
    "SBATCH_GPUS_PER_NODE": "gpus-per-node",
    "SBATCH_GPUS_PER_TASK": "gpus-per-task",
    "SBATCH_HINT": "hint",
    "SLURM_HINT": "hint",
    "SBATCH_JOB_NAME": "job-name",
    "SBATCH_MEM_PER_CPU": "mem-per-cpu",
    "SBATCH_MEM_PER_GPU": "mem-per-gpu",
    "SBATCH_MEM_PER_NODE": "mem",
    "SBATCH_NO_KILL": "no-kill",
    "SBATCH_NO_REQUEUE": "no-requeue",
    "SBATCH_OPEN_MODE": "open-mode",
    "SBATCH_PARTITION": "partition",
    "SBATCH_QOS": "qos",
    "SBATCH_REQUEUE": "requeue",
    "SBATCH_RESERVATION": "reservation",
    "SBATCH_SIGNAL": "signal",
    "SBATCH_TIMELIMIT": "time",
    "SBATCH_WAIT": "wait",
    "SBATCH_WCKEY": "wckey",
    "SBATCH_ERROR": "error",
    "SBATCH_INPUT": "input",
    "SBATCH_OUTPUT": "output",
}
