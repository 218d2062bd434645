"""Multi-node with real Nova 2011.2 (make e2e): one role per node, as roles/architectures.yaml's
multi-node draws it: controller, network, volume and a compute node on the libvirt driver, four
chroots in four network namespaces on one bridged LAN, every node configured by its own agent
from the answers late.sh writes, all four started together. The network, volume and compute
nodes wait for the controller; the controller's stackops-check must then see every node's
services alive and the EC2 API list all four nodes, and a tiny instance (tinyimage.py) must
reach running in the compute node's libvirtd with its marker in GetConsoleOutput.

The boundary is tests/integration/realnova.py's; test_real_nova_dual.py has the libvirt details.
About 5 minutes warm (four nodes' roots and python environments, then the agents).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from distro_builder.qa import firstboot
from tests.integration import tinyimage
from tests.integration.realnova import (
    ROOT,
    RealNode,
    make_lan,
    remove_lan,
    require_realnova_or_skip,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]

CC = "10.0.0.1"
SHARED = {k: firstboot.SECRETS[k] for k in ("nova_db_password", "rabbit_password")}
NODES = (
    ("mc1", "10.0.0.1", "controller", {"hostname": "mc1", "public_interface": "eth0",
                                        **firstboot.SECRETS}),
    ("mn1", "10.0.0.2", "network", {"hostname": "mn1", "controller_address": CC,
                                     "public_interface": "eth0", "flat_interface": "eth1",
                                     "floating_range": "10.0.1.0/28", **SHARED}),
    ("mv1", "10.0.0.3", "volume", {"hostname": "mv1", "controller_address": CC,
                                    "public_interface": "eth0", "volume_device": "/dev/vdb",
                                    **SHARED}),
    ("mk1", "10.0.0.4", "compute", {"hostname": "mk1", "controller_address": CC,
                                     "public_interface": "eth0", "flat_interface": "eth1",
                                     "libvirt_type": "qemu", **SHARED}),
)  # fmt: skip
EXPECT = ("mn1:nova-network", "mv1:nova-volume", "mk1:nova-compute", "mc1:nova-scheduler")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RealNode]]:
    require_realnova_or_skip()
    tag = os.getpid() % 10000
    lan = f"rmlan{tag}"
    nodes: dict[str, RealNode] = {}
    make_lan(lan)
    try:
        t0 = time.monotonic()
        for name, addr, roles, answers in NODES:
            work = tmp_path_factory.mktemp(f"realnova-{name}")
            nodes[name] = RealNode(work / "root", f"rm{tag}{name}", name)
            nodes[name] = RealNode.create(
                work, ns=nodes[name].ns, hostname=name, libvirt=roles == "compute"
            )
            inputs = firstboot.inputs_from_tree(ROOT, roles)
            answers_file, _ = firstboot.write_answers(inputs, answers, work / "late")
            nodes[name].install(inputs.debs, answers_file)
            nodes[name].network(addr, lan=lan)
        setup = time.monotonic() - t0
        results: dict[str, subprocess.CompletedProcess[str]] = {}

        def agent(name: str) -> None:
            results[name] = nodes[name].agent("--non-interactive")

        threads = [threading.Thread(target=agent, args=(n,)) for n in nodes if n != "mc1"]
        for t in threads:
            t.start()
        t1 = time.monotonic()
        agent("mc1")
        for t in threads:
            t.join(timeout=900)
        print(f"multi-node: set-up {setup:.0f} s, every agent done after",
              f"{time.monotonic() - t1:.0f} s")  # fmt: skip
        for name, proc in sorted(results.items()):
            assert proc.returncode == 0, name + "\n" + proc.stdout + nodes[name].job_logs()
        yield nodes
    finally:
        for n in nodes.values():
            n.stop()
        remove_lan(lan)
        for n in nodes.values():
            n.remove()


def test_every_node_waits_for_the_controller_and_the_check_sees_all_four(
    cloud: dict[str, RealNode],
) -> None:
    for name in ("mn1", "mv1", "mk1"):
        log = cloud[name].log("/var/log/stackops/steps/controller-ready.log")
        assert f"the controller at {CC} is ready" in log, (name, log)
    cc = cloud["mc1"]
    argv = ["stackops-check", *(f"--expect={e}" for e in EXPECT)]
    check = cc.run(argv, timeout=400)
    logs = "".join(n.job_logs() for n in cloud.values())
    assert check.returncode == 0, check.stdout + check.stderr + logs
    assert "DescribeAvailabilityZones verbose lists 4 node(s): " in check.stdout, check.stdout


def test_an_instance_runs_on_the_compute_node(cloud: dict[str, RealNode]) -> None:
    cc = cloud["mc1"]
    folder = tinyimage.build(cc)
    proc = cc.run(["/opt/nova-env/bin/python", f"{folder}/launch-tiny", folder, "240"], timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out + cloud["mk1"].job_logs() + cloud["mn1"].job_logs()
    assert re.search(r"^LAUNCH state i-[0-9a-f]{8} running after \d+ s$", proc.stdout, re.M), out
    assert f"LAUNCH console {tinyimage.MARKER} cmdline: root=/dev/vda console=ttyS0" in out
    assert list(cloud["mk1"].path("/var/log/libvirt/qemu").glob("instance-*.log"))
