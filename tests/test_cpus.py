"""The CPUs the process may use: affinity capped by a cgroup v1 or v2 CPU quota, read from files laid out as
the kernel lays them out (a cgroup tree under tmp_path), and the interpreter's default thread count."""
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.backends.tflite import arrangement, load
from app.cpus import CpuBudget, affinity, cgroup_quota, cpu_budget
from tests.conftest import ROOT

MODEL = ROOT / "models" / "nanodet_int8_pertensor.tflite"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_quota_is_the_tightest_on_the_way_to_the_root(tmp_path):
    write(tmp_path / "cpu.max", "max 100000")
    write(tmp_path / "kubepods" / "cpu.max", "300000 100000")  # 3 CPUs for the pod
    write(tmp_path / "kubepods" / "app" / "cpu.max", "150000 100000")  # 1.5 for this container
    assert cgroup_quota("0::/kubepods/app\n", tmp_path) == 1.5
    assert cgroup_quota("0::/kubepods\n", tmp_path) == 3.0


def test_no_quota_is_none_in_either_version(tmp_path):
    write(tmp_path / "cpu.max", "max 100000")
    assert cgroup_quota("0::/\n", tmp_path) is None
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1")
    write(tmp_path / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000")
    assert cgroup_quota("4:cpu,cpuacct:/docker/abc\n", tmp_path) is None
    assert cgroup_quota("", tmp_path / "missing") is None


def test_cgroup_v1_quota_of_the_cpu_controller(tmp_path):
    d = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", "50000")
    write(d / "cpu.cfs_period_us", "100000")
    text = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
    assert cgroup_quota(text, tmp_path) == 0.5
    # a container that sees its own cgroup at the mount's root
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "200000")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000")
    assert cgroup_quota("4:cpu,cpuacct:/\n", tmp_path) == 2.0


def test_budget_of_this_process_is_its_affinity_capped_by_its_quota():
    b = cpu_budget()
    assert b.affinity == len(os.sched_getaffinity(0)) == affinity()
    expected = b.affinity if b.quota is None else min(b.affinity, math.ceil(b.quota))
    assert b.cpus == max(1, expected)
    assert str(b.cpus) in b.describe()


def test_the_interpreter_defaults_to_the_usable_cpus_and_a_set_count_wins():
    assert load(MODEL, None).threads == cpu_budget().cpus
    assert load(MODEL, 1).threads == 1


def cpus(n: int) -> CpuBudget:
    return CpuBudget(cpus=n, affinity=n, quota=None)


def test_by_default_each_cpu_runs_an_interpreter_of_its_own_up_to_two():
    got = {n: (a.interpreters, a.threads) for n in (1, 2, 3, 4, 6, 8, 16)
           for a in [arrangement(None, None, budget=cpus(n))]}
    assert got == {1: (1, 1), 2: (2, 1), 3: (2, 1), 4: (2, 2), 6: (2, 3), 8: (2, 4), 16: (2, 8)}
    assert "the CPUs this process may use: 2" in arrangement(None, None, budget=cpus(2)).describe()


def test_one_frame_at_a_time_gets_one_interpreter_with_every_cpu():
    a = arrangement(None, None, frames=1, budget=cpus(4))  # a planner that follows the tracks
    assert (a.interpreters, a.threads) == (1, 4)


def test_what_is_configured_stays_and_the_rest_shares_the_cpus():
    def split(threads, interpreters, n):
        a = arrangement(threads, interpreters, budget=cpus(n))
        return a.interpreters, a.threads

    assert split(2, None, 8) == (2, 2)
    assert split(None, 3, 8) == (3, 2)
    assert split(None, 3, 2) == (3, 1)
    assert split(16, None, 2) == (1, 16)
    a = arrangement(1, 2)
    assert (a.interpreters, a.threads, a.how) == (2, 1, "as configured")


def test_interpreters_run_at_once_from_as_many_threads_and_agree_with_one():
    rng = np.random.default_rng(5)
    one, two = load(MODEL, 1), load(MODEL, 1, interpreters=2)
    spec = one.inputs[0]
    inputs = [rng.integers(0, 256, spec.shape, dtype=np.uint8).astype(spec.dtype) for _ in range(8)]
    expected = [one.run([x]) for x in inputs]
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda x: two.run([x]), inputs))
    assert two.interpreters == 2 and len(got) == 8
    for e, g in zip(expected, got):
        assert all(np.array_equal(a, b) for a, b in zip(e, g))
    assert not all(np.array_equal(a, b) for a, b in zip(got[0], got[1]))  # the inputs differ, and so do the outputs


def bench(*extra: str, cpus: set[int] | None = None):
    argv = [sys.executable, "-m", "app", "bench", "--invokes", "5", "--max-frames", "3", "--no-progress", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)


def test_bench_pinned_to_one_cpu_runs_one_thread_and_times_only_that():
    p = bench(cpus={min(os.sched_getaffinity(0))})
    assert p.returncode == 0, p.stderr
    assert "(1 interpreter x 1 thread, the CPUs this process may use: 1 (CPU affinity 1" in p.stderr
    rows = re.findall(r"^  (\d+) threads? ", p.stdout, re.M)
    assert rows == ["1"], p.stdout
    assert re.search(r"^ratio end-to-end/best: +\d+\.\d+ ", p.stdout, re.M), p.stdout


def test_bench_times_every_arrangement_that_fills_the_usable_cpus_and_names_the_best():
    p = bench("--threads", "1", "--interpreters", "1")
    assert p.returncode == 0, p.stderr
    n = cpu_budget().cpus
    rows = re.findall(r"^  (\d+) threads? .*$", p.stdout, re.M)
    assert [int(r) for r in rows] == list(range(1, max(n, 1) + 1)), p.stdout
    assert "(1 interpreter x 1 thread, as configured)" in p.stderr
    best = re.search(r"^best raw rate: .* at (?:(\d+) interpreters x )?(\d+) threads?", p.stdout, re.M)
    assert best and 1 <= int(best.group(1) or 1) * int(best.group(2)) <= n, p.stdout
    if n > 1:  # one thread on each CPU, each its own interpreter; the run's own arrangement is marked
        assert re.search(rf"^  {n} interpreters x 1 thread +\d+\.\d invokes/s", p.stdout, re.M), p.stdout
        assert re.search(r"^  1 thread .*\(the pipeline's\)", p.stdout, re.M), p.stdout
