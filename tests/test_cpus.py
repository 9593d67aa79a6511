"""The CPUs the process may use: affinity capped by a cgroup v1 or v2 CPU quota, read from files laid out as
the kernel lays them out (a cgroup tree under tmp_path), and the interpreter's default thread count."""
import math
import os

from app.backends.tflite import load
from app.cpus import affinity, cgroup_quota, cpu_budget
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
