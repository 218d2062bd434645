"""The first-boot agent run for real, under dash and bash, in a debootstrap'd Debian root file
system (tests/integration/rootfs.py): installed with dpkg from the .deb the tool builds, then run
for every role and reference architecture. Only service control, the Nova/MySQL/RabbitMQ tools
and kernel/disk commands are recorded instead of run (the boundary, see rootfs.py)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from distro_builder.qa.console import SerialConsole
from tests.integration.rootfs import PATH, Node, Run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHELLS = ["dash", "bash"]
SECRETS = {
    "mysql_root_password": "r00t'Secret#1",
    "nova_db_password": "n@va/Secret:2",
    "rabbit_password": 'rabbit"Secret\\3',
    "admin_password": "adm1n Secret 4",
}
BASE_ANSWERS = {
    "hostname": "node1",
    "controller_address": "10.0.0.1",
    "floating_range": "10.0.1.0/24",
    # no default since issue 22 finding 8 (the installer's group on the first disk): these nodes
    # have no such group (vgs fails), so the volume step makes it on this disk
    "volume_device": "/dev/sdb",
    # given, so that an all-in-one does not find its own (test_all_in_one_makes_its_own_answers)
    "public_interface": "eth0",
    "flat_interface": "eth1",
    **SECRETS,
}
STEPS = {
    "controller": [
        "mysql",
        "nova-db",
        "rabbitmq",
        "glance",
        "db-sync",
        "admin",
        "network-create",
        "services",
        "metadata-route",
    ],
    "network": ["ip-forward", "nova-network", "floating"],
    "volume": ["iscsitarget", "volume-group", "nova-volume"],
    "compute": ["libvirt", "volume-host", "nova-compute"],
}
# The shared roles' steps (roles/base, roles/flat-network), run first under the node's first role.
SHARED_STEPS = {"base": ["nova-conf", "controller-ready"], "flat-network": ["flat-interface"]}
FLAT_ROLES = {"network", "compute"}  # the roles that include roles/flat-network
ORDER = ["controller", "network", "volume", "compute"]
# Reference architectures (roles/architectures.yaml): node name -> roles.
NODES = {
    "single-node/all-in-one": "controller,network,volume,compute",
    "dual-node/cloud-controller": "controller,network,volume",
    "dual-node/compute": "compute",
    "multi-node/controller": "controller",
    "multi-node/network": "network",
    "multi-node/volume": "volume",
    "multi-node/compute": "compute",
}
# Flags each role must put in nova.conf (beyond the common ones).
ROLE_FLAGS = {
    "controller": {"fixed_range", "network_size", "scheduler_driver", "flat_network_dns"},
    "network": {"flat_interface", "public_interface", "fixed_range", "network_size"}
    | {"floating_range", "flat_network_dhcp_start", "ec2_dmz_host", "dmz_cidr"},
    "volume": {"volume_group"},
    "compute": {"libvirt_type", "flat_interface", "fixed_range", "iscsi_ip_prefix"},
}
COMMON_FLAGS = {
    "sql_connection",
    "rabbit_host",
    "rabbit_password",
    "network_manager",
    "glance_host",
    "image_service",
    "dhcpbridge_flagfile",
    "state_path",
    "logdir",
    "my_ip",
}
# The services each role must restart, in this order.
ROLE_SERVICES = {
    "controller": ["mysql", "rabbitmq-server", "glance-registry", "glance-api", "nova-api"]
    + ["nova-scheduler", "nova-objectstore"],
    "network": ["nova-network"],
    "volume": ["iscsitarget", "nova-volume"],
    "compute": ["libvirt-bin", "nova-compute"],
}
STEP_LINE = re.compile(
    r"^STACKOPS step=(\d+)/(\d+) role=(\w+) name=([\w-]+) status=(ok|failed) t=\d+\.\d+s$"
)


def plan(roles: str) -> list[tuple[str, str]]:
    rs = [r for r in ORDER if r in roles.split(",")]
    shared = SHARED_STEPS["base"] + (SHARED_STEPS["flat-network"] if FLAT_ROLES & set(rs) else [])
    check = [("controller", "check")] if "controller" in rs else []  # the health check, last
    return [(rs[0], s) for s in shared] + [(r, s) for r in rs for s in STEPS[r]] + check


def flags_list() -> set[str]:
    text = (ROOT / "agent" / "nova-2011.2-flags.txt").read_text()
    return {ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")}


def make_node(tmp_path: Path, agent_deb: Path, roles: str, *, init: str = "upstart") -> Node:
    node = Node.create(tmp_path, init=init)
    out = node.install_deb(agent_deb)
    assert "Setting up stackops-agent (0.1.0)" in out, out
    node.write_answers({"roles": roles, **BASE_ANSWERS})
    healthy_cloud(node, roles)
    return node


NODE_ADDRESS = "10.0.0.5"
# What real nova-manage 2011.2 prints for `network list` (bin/nova-manage:548-558: the header
# first, before it queries the database; then one row per network), and, on an error, the header
# then "Command failed, please check log for more info" and exit 1 (1111-1119). The recorder
# prints these texts: it stands in for nova-manage, which cannot run in the lucid-like root.
NOVA_ROW = "%-18s\t%-15s\t%-15s\t%-15s\n"  # nova-manage's own format string
NETWORK_LIST_HEADER = NOVA_ROW % ("network", "netmask", "start address", "DNS")  # noqa: UP031
NETWORK_LIST_ROW = NOVA_ROW % (  # noqa: UP031
    "192.168.100.0/24",
    "255.255.255.0",
    "192.168.100.2",
    "10.0.0.1",
)
NOVA_MANAGE_FAILED = "Command failed, please check log for more info\n"
# `service list` rows as 2011.2 prints them (bin/nova-manage:669-671, "%-10s %-10s %-8s %s %s").
SERVICE_LIST = (
    "ctl1       nova-scheduler enabled  :-) 2011-04-15 10:00:00\n"
    "ctl1       nova-network enabled  :-) 2011-04-15 10:00:01\n"
    "ctl1       nova-volume enabled  :-) 2011-04-15 10:00:02\n"
)


def healthy_cloud(node: Node, roles: str = "") -> None:
    """The recorder's answers when everything works: no VG yet, RabbitMQ has user nova, the
    started jobs run, the controller's network exists (on a controller: not yet, its
    network-create step makes it), project zipfile writes a zip, eth0 has an address."""
    if "controller" in roles.split(","):  # before network create: the header alone
        node.rule("0", "nova-manage * network list", NETWORK_LIST_HEADER)
    node.rule("1", "vgs nova-volumes")
    node.rule("0", "rabbitmqctl list_users", "Listing users ...\nnova\n...done.\n")
    node.rule("0", "initctl status *", "job start/running, process 4242\n")
    node.rule("0", "nova-manage * network list", NETWORK_LIST_HEADER + NETWORK_LIST_ROW)
    node.rule("0", "nova-manage * service list", SERVICE_LIST)
    node.rule("create=/root/creds/nova.zip", "nova-manage * project zipfile *", "PK\x03\x04zip")
    node.rule(
        "0",
        "ip -4 -o addr show dev eth0",
        f"2: eth0    inet {NODE_ADDRESS}/24 brd 10.0.0.255 scope global eth0\n",
    )


def step_lines(run: Run) -> list[tuple[int, int, str, str, str]]:
    found = []
    for line in run.output.splitlines():
        m = STEP_LINE.match(line)
        if m:
            found.append((int(m[1]), int(m[2]), m[3], m[4], m[5]))
    return found


def services_restarted(actions: list[str]) -> list[str]:
    names = []
    for a in actions:
        m = re.match(r"^(?:initctl start|service) (\S+)(?: restart| start)?$", a)
        m = m or re.match(r"^systemctl (?:re)?start (\S+)\.service$", a)
        if m and m[1] not in names:
            names.append(m[1])
    return names


def assert_no_secret(node: Node, run: Run) -> None:
    places = {"console": run.output, "argv": "\n".join(node.actions()), **node.logs()}
    for where, text in places.items():
        for key, secret in SECRETS.items():
            assert secret not in text, f"{key} leaked into {where}"
            assert secret.replace("@", "%40").replace("/", "%2F") not in text, where


def parse_nova_conf(text: str) -> dict[str, str]:
    flags: dict[str, str] = {}
    for line in text.splitlines():
        assert re.fullmatch(r"--[a-z_0-9]+(=.*)?", line), f"not a Cactus flag line: {line!r}"
        name, _, value = line[2:].partition("=")
        assert name not in flags, f"--{name} twice"
        flags[name] = value
    return flags


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("arch_node", list(NODES))
def test_architecture_node(tmp_path: Path, agent_deb: Path, arch_node: str, shell: str) -> None:
    roles = NODES[arch_node]
    node = make_node(tmp_path, agent_deb, roles)
    assert node.path("/etc/init/stackops-agent.conf").is_file(), "postinst enables the job"

    run = node.run_agent(shell, "--non-interactive")
    assert run.returncode == 0, run.output
    expected = plan(roles)
    n = len(expected)
    assert step_lines(run) == [(i, n, r, s, "ok") for i, (r, s) in enumerate(expected, 1)]
    assert run.output.rstrip().endswith(f"STACKOPS-FIRSTBOOT done roles={roles}")

    # nova.conf: Cactus format, only 2011.2 flags, the role's flags, 0640 root:nova
    conf = node.path("/etc/nova/nova.conf")
    flags = parse_nova_conf(conf.read_text())
    assert set(flags) <= flags_list(), set(flags) - flags_list()
    assert "verbose" not in flags, "--verbose logs every flag, passwords included"
    want = set(COMMON_FLAGS)
    for r in roles.split(","):
        want |= ROLE_FLAGS[r]
    assert want <= set(flags), want - set(flags)
    assert flags["sql_connection"] == "mysql://nova:n%40va%2FSecret%3A2@10.0.0.1/nova"
    assert flags["network_manager"] == "nova.network.manager.FlatDHCPManager"
    assert flags["my_ip"] == NODE_ADDRESS  # this node's address on public_interface
    if "compute" in roles:
        assert flags["libvirt_type"] == "qemu"  # the test CPU has no vmx/svm
        assert flags["iscsi_ip_prefix"] == "10.0.0.1"  # no volume_address: the controller's
    if "network" in roles:
        assert flags["flat_network_dhcp_start"] == "192.168.100.2"  # inside fixed_range
        assert flags["ec2_dmz_host"] == "10.0.0.1" and flags["dmz_cidr"] == "10.0.0.1/32"
    st = conf.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_uid == 0
    nova_gid = node.chroot(["getent", "group", "nova"]).stdout.split(":")[2]
    assert st.st_gid == int(nova_gid)
    assert stat.S_IMODE(node.path("/etc/stackops/answers").stat().st_mode) == 0o600

    # service actions in order, role by role
    want_services = [s for r in ORDER if r in roles.split(",") for s in ROLE_SERVICES[r]]
    assert services_restarted(node.actions()) == want_services

    # files the roles change
    if "controller" in roles:
        # every address, as StackOps did: not the DHCP lease of the moment (issue 22.6)
        assert "bind-address\t\t= 0.0.0.0" in node.path("/etc/mysql/my.cnf").read_text()
        # the network's DNS is its gateway (nova-network's dnsmasq), not 8.8.4.4 (issue 22.13)
        assert flags["flat_network_dns"] == "192.168.100.1"
        glance = node.path("/etc/glance/glance.conf").read_text()
        assert "[app:glance-api]" in glance and "[app:glance-registry]" in glance
        acts = node.actions()
        assert (
            "nova-manage --flagfile=/etc/nova/nova.conf network create 192.168.100.0/24 1 256"
            in acts
        )
        assert "nova-manage --flagfile=/etc/nova/nova.conf db sync" in acts
        sql = node.recorded_stdin()
        assert "CREATE DATABASE IF NOT EXISTS nova;" in sql
        assert "GRANT ALL PRIVILEGES ON nova.* TO 'nova'@'%' IDENTIFIED BY 'n@va/Secret:2';" in sql
        assert "SET secret_key = 'adm1n Secret 4' WHERE id = 'admin'" in sql
        assert "DELETE FROM mysql.user WHERE User = '';" in sql  # lucid's anonymous accounts
        images = node.path("/var/lib/glance/images").stat()
        glance_uid = node.chroot(["id", "-u", "glance"]).stdout.strip()
        assert images.st_uid == int(glance_uid), "glance-api writes images as glance"
        assert not list(node.path("/var/lib/stackops/run").glob("*")), "mysql option file left"
    if FLAT_ROLES & set(roles.split(",")):  # the flat interface is up and stays up
        assert (
            "auto eth1\niface eth1 inet manual" in node.path("/etc/network/interfaces").read_text()
        )
        assert "ifup eth1" in node.actions()
    if "network" in roles:
        assert "\nnet.ipv4.ip_forward=1\n" in node.path("/etc/sysctl.conf").read_text()
        host = node.chroot(["uname", "-n"]).stdout.strip()  # nova-network's host, not the answer
        acts = node.actions()
        nm = "nova-manage --flagfile=/etc/nova/nova.conf"
        assert f"{nm} floating create {host} 10.0.1.0/24" in acts
        # not the network and broadcast addresses (real 2011.2 handed out 10.0.1.0 first)
        assert acts.index(f"{nm} floating create {host} 10.0.1.0/24") < acts.index(
            f"{nm} floating delete 10.0.1.0/32"
        )
        assert f"{nm} floating delete 10.0.1.255/32" in acts
    if "controller" in roles:
        assert node.path("/var/lib/nova/CA/cacert.pem").is_file()  # the root CA before the zip
        assert stat.S_IMODE(node.path("/root/creds/nova.zip").stat().st_mode) == 0o600
    else:  # waited for the controller: RabbitMQ's port and nova's network list
        acts = node.actions()
        assert "socat -u /dev/null TCP:10.0.0.1:5672,connect-timeout=3" in acts
    # the hostname answer is applied (issue 22.13); `hostname` is recorded (the test shares
    # the host's UTS namespace)
    assert node.path("/etc/hostname").read_text() == "node1\n"
    assert "127.0.1.1\tnode1\n" in node.path("/etc/hosts").read_text()
    assert "hostname node1" in node.actions()
    if "compute" in roles and "volume" not in roles:  # issue 22.10: no DNS needed to attach
        hosts = node.path("/etc/hosts").read_text()
        assert "10.0.0.1\tctl1\n" in hosts, hosts
    if "volume" in roles:
        text = node.path("/etc/default/iscsitarget").read_text()
        assert text == "ISCSITARGET_ENABLE=true\n"
        acts = node.actions()
        assert acts.index("pvcreate -ff -y /dev/sdb") < acts.index("vgcreate nova-volumes /dev/sdb")

    # the job disabled itself, the status says done, no secret anywhere
    assert not node.path("/etc/init/stackops-agent.conf").exists()
    assert node.path("/etc/init/stackops-agent.conf.disabled").is_file()
    status = node.path("/var/lib/stackops/status").read_text()
    assert "state='done'" in status and f"roles='{roles}'" in status
    assert_no_secret(node, run)

    # a second run changes nothing: no action, no file
    before = node.snapshot()
    node.reset_actions()
    again = node.run_agent(shell, "--non-interactive")
    assert again.returncode == 0, again.output
    assert node.actions() == []
    assert node.snapshot() == before
    assert again.output.rstrip().endswith(f"STACKOPS-FIRSTBOOT done roles={roles}")


# A command of each single-node step that the recorder can make fail (or a missing group for
# the one step that only writes a file).
FAIL_AT = {
    "nova-conf": None,
    "mysql": "initctl start mysql",
    "nova-db": "mysql --defaults-extra-file=*-root.cnf",
    "rabbitmq": "service rabbitmq-server start",
    "glance": "initctl start glance-api",
    "db-sync": "nova-manage * db sync",
    "admin": "nova-manage * project create *",
    "network-create": "nova-manage * network create *",
    "services": "initctl start nova-scheduler",
    "ip-forward": "sysctl *",
    "flat-interface": "ifup eth1",
    "nova-network": "initctl start nova-network",
    "floating": "nova-manage * floating create *",
    "iscsitarget": "service iscsitarget restart",
    "volume-group": "vgcreate *",
    "nova-volume": "initctl start nova-volume",
    "libvirt": "initctl start libvirt-bin",
    "nova-compute": "initctl start nova-compute",
}


# make test resumes after the first step, the first of each role and the last (the same code
# path for every step); the other steps only in make e2e, to keep make test under 50 minutes
# on the 2-core TCG machine (README)
IN_MAKE_TEST = {"nova-conf", "mysql", "ip-forward", "iscsitarget", "libvirt", "nova-compute"}


@pytest.mark.parametrize(
    "step", [s if s in IN_MAKE_TEST else pytest.param(s, marks=pytest.mark.e2e) for s in FAIL_AT]
)
def test_resume_after_failure_at_each_step(tmp_path: Path, agent_deb: Path, step: str) -> None:
    roles = NODES["single-node/all-in-one"]
    shell = SHELLS[list(FAIL_AT).index(step) % 2]  # alternate shells over the steps
    node = make_node(tmp_path, agent_deb, roles)
    names = [s for _, s in plan(roles)]
    k = names.index(step)
    if FAIL_AT[step] is None:
        node.chroot(["groupdel", "nova"])
    else:
        node.clear_rules()
        node.rule("1", FAIL_AT[step])
        healthy_cloud(node, roles)

    failed = node.run_agent(shell, "--non-interactive")
    assert failed.returncode == 1, failed.output
    lines = step_lines(failed)
    assert [s for *_, s, st in lines if st == "ok"] == names[:k]
    assert lines[-1][3:] == (step, "failed")
    log = f"/var/log/stackops/steps/{step}.log"
    assert failed.output.rstrip().endswith(f"STACKOPS-FIRSTBOOT failed step={step} log={log}")
    assert "error" in node.path(log).read_text() or "failure" in node.path(log).read_text()
    assert node.path("/etc/init/stackops-agent.conf").is_file(), "stays enabled for a retry"
    status = node.path("/var/lib/stackops/status").read_text()
    assert "state='failed'" in status and f"failed_step='{step}'" in status
    assert_no_secret(node, failed)

    # fixed: the next run (next boot) resumes at the failed step
    if FAIL_AT[step] is None:
        node.chroot(["groupadd", "--system", "nova"])
    node.clear_rules()
    healthy_cloud(node)
    node.reset_actions()
    resumed = node.run_agent(shell, "--non-interactive")
    assert resumed.returncode == 0, resumed.output
    assert [s for *_, s, st in step_lines(resumed) if st == "ok"] == names
    assert f"STACKOPS-FIRSTBOOT done roles={roles}" in resumed.output
    # the steps before the failed one did not run again; the failed one ran twice
    for i, name in enumerate(names):
        runs = node.path(f"/var/log/stackops/steps/{name}.log").read_text().count("=== exit")
        assert runs == (2 if i == k else 1), (name, runs)
    assert not node.path("/etc/init/stackops-agent.conf").exists()
    assert_no_secret(node, resumed)


@pytest.mark.parametrize("shell", SHELLS)
def test_power_cut_mid_step_resumes(tmp_path: Path, agent_deb: Path, shell: str) -> None:
    roles = "controller"
    node = make_node(tmp_path, agent_deb, roles)
    node.clear_rules()
    node.rule("kill", "nova-manage * project create *")
    healthy_cloud(node, roles)
    cut = node.run_agent(shell, "--non-interactive")
    assert cut.returncode != 0
    assert "STACKOPS-FIRSTBOOT" not in cut.output
    # /var/run -> /run in the rootfs: look at /run (a power cut leaves the pid file behind)
    assert node.path("/run/stackops-agent.pid").exists()
    assert "state='running'" in node.path("/var/lib/stackops/status").read_text()

    node.clear_rules()
    healthy_cloud(node, roles)
    node.reset_actions()
    resumed = node.run_agent(shell, "--non-interactive")
    assert resumed.returncode == 0, resumed.output
    acts = node.actions()
    # the admin step resumes after its parts that had finished (user, secret)
    assert not any(" user admin " in a for a in acts), acts
    assert any(" project create stackops admin" in a for a in acts)
    assert not any("db sync" in a for a in acts)
    assert "STACKOPS-FIRSTBOOT done roles=controller" in resumed.output


def test_secrets_in_tool_output_are_redacted(tmp_path: Path, agent_deb: Path) -> None:
    """A tool that prints nova.conf (passwords included) into the step log: the log gets *****."""
    node = make_node(tmp_path, agent_deb, "compute")
    node.clear_rules()
    conf_dump = "--sql_connection=mysql://nova:n%40va%2FSecret%3A2@10.0.0.1/nova\n"
    node.rule("1", "initctl start nova-compute", conf_dump + f"pw={SECRETS['rabbit_password']}\n")
    healthy_cloud(node)  # the controller is ready (first matching rule wins)
    node.rule("pass", "nova-manage *")  # no real nova-manage: exit 127
    run = node.run_agent("dash", "--non-interactive")
    assert run.returncode == 1
    log = node.path("/var/log/stackops/steps/nova-compute.log").read_text()
    assert "mysql://nova:*****@10.0.0.1/nova" in log
    assert "pw=*****" in log
    assert_no_secret(node, run)


@pytest.mark.parametrize("shell", SHELLS)
def test_role_selector_plain_prompt(tmp_path: Path, agent_deb: Path, shell: str) -> None:
    """No roles and no passwords answered: the numbered prompt (stdin is not a terminal) asks,
    re-asks on bad input, validates and saves the answers (0600) before configuring."""
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write_answers({"roles": "", "hostname": "c1"})
    healthy_cloud(node)
    typed = "\n".join(
        [
            "9",  # not a role
            "4",  # compute
            "10.0.0.300",  # not an IPv4 address
            "10.0.0.1",
            "pw-one",
            "pw-two",  # the pair differs: asked again
            "nova-pw-1",
            "nova-pw-1",
            "rabbit-pw-1",
            "rabbit-pw-1",
        ]
    )
    run = node.run_agent(shell, stdin=typed + "\n")
    assert run.returncode == 0, run.output
    assert "Please answer with numbers from 1 to 4" in run.output
    assert "Invalid value for controller_address" in run.output
    assert "The two passwords differ" in run.output
    answers = node.path("/etc/stackops/answers")
    text = answers.read_text()
    assert "roles='compute'" in text and "controller_address='10.0.0.1'" in text
    assert "nova_db_password='nova-pw-1'" in text and "rabbit_password='rabbit-pw-1'" in text
    assert stat.S_IMODE(answers.stat().st_mode) == 0o600
    assert "STACKOPS-FIRSTBOOT done roles=compute" in run.output
    for text in node.logs().values():
        assert "nova-pw-1" not in text and "rabbit-pw-1" not in text


def test_role_selector_whiptail_on_a_terminal(tmp_path: Path, agent_deb: Path) -> None:
    """On the console (a terminal, whiptail installed as the .deb Recommends) the selector is a
    checklist and the questions are input and password boxes: driven through a pty with the
    smoke harness's console, keys as a person would press them."""
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write_answers({"roles": "", "hostname": "c1"})
    healthy_cloud(node)
    argv = ["chroot", str(node.root), "dash", "/usr/sbin/stackops-agent"]
    env = {"PATH": PATH, "LC_ALL": "C", "HOME": "/root", "TERM": "vt100"}
    with SerialConsole(argv, tmp_path / "console.log", env=env, fatal_patterns=()) as con:
        con.expect("Roles of this node", timeout=60)
        con.expect("compute")
        con.send_key("down", times=3)  # controller -> network -> volume -> compute
        con.send_key("space")
        con.send_key("enter")
        con.expect("IPv4 address of the cloud controller", timeout=30)
        con.send("10.0.0.300")
        con.send_key("enter")
        con.expect("Invalid value for controller_address", timeout=30)
        con.send_key("enter")
        con.expect("IPv4 address of the cloud controller", timeout=30)
        con.send("10.0.0.1")
        con.send_key("enter")
        for secret in ("nova-pw-1", "rabbit-pw-1"):
            con.expect("Password of the", timeout=30)
            con.send(secret)
            con.send_key("enter")
            con.expect("(again)", timeout=30)
            con.send(secret + ("x" if secret == "nova-pw-1" else ""))
            con.send_key("enter")
            if secret == "nova-pw-1":  # the pair differed: told in a box, asked again
                con.expect("The two passwords differ", timeout=30)
                con.send_key("enter")
                con.expect("Password of the", timeout=30)
                con.send(secret)
                con.send_key("enter")
                con.expect("(again)", timeout=30)
                con.send(secret)
                con.send_key("enter")
        for _optional in ("volume_address", "volume_host"):  # an empty answer is one
            con.expect("of the volume node", timeout=30)
            con.send_key("enter")
        done = con.expect_line("STACKOPS-FIRSTBOOT done roles=", timeout=120)
        screen = con.text()
    assert done == "compute"
    text = node.path("/etc/stackops/answers").read_text()
    assert "roles='compute'" in text and "controller_address='10.0.0.1'" in text
    assert "nova_db_password='nova-pw-1'" in text and "rabbit_password='rabbit-pw-1'" in text
    assert "nova-pw-1" not in screen and "rabbit-pw-1" not in screen  # password boxes never echo
    for log_text in node.logs().values():
        assert "nova-pw-1" not in log_text and "rabbit-pw-1" not in log_text


def test_missing_answer_without_console_fails_clearly(tmp_path: Path, agent_deb: Path) -> None:
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write_answers({"roles": "volume", "controller_address": "10.0.0.1"})
    run = node.run_agent("dash", "--non-interactive")
    assert run.returncode == 1
    assert "no valid answer for nova_db_password" in run.output
    assert "STACKOPS-FIRSTBOOT failed step=answers log=/var/log/stackops/agent.log" in run.output
    assert node.path("/etc/init/stackops-agent.conf").is_file()
    assert node.actions() == []


def test_invalid_answers_file_is_refused(tmp_path: Path, agent_deb: Path) -> None:
    node = Node.create(tmp_path)
    node.install_deb(agent_deb)
    node.write("/etc/stackops/answers", "roles=compute\n", 0o600)  # not quoted
    run = node.run_agent("bash", "--non-interactive")
    assert run.returncode == 1
    assert "line 1 is not key='value'" in run.output


@pytest.mark.parametrize(("flags", "kind"), [("fpu vmx sse2", "kvm_intel"), ("fpu svm", "kvm_amd")])
def test_kvm_when_the_cpu_can(tmp_path: Path, agent_deb: Path, flags: str, kind: str) -> None:
    node = make_node(tmp_path, agent_deb, "compute")
    node.set_cpu_flags(flags)
    run = node.run_agent("dash", "--non-interactive")
    assert run.returncode == 0, run.output
    assert "--libvirt_type=kvm" in node.path("/etc/nova/nova.conf").read_text().splitlines()
    assert f"modprobe {kind}" in node.actions()


def test_controller_finds_its_own_address(tmp_path: Path, agent_deb: Path) -> None:
    """roles/base.yaml skips controller_address on a controller: the agent takes eth0's."""
    node = make_node(tmp_path, agent_deb, "controller")
    answers = {"roles": "controller", **SECRETS}
    node.write_answers(answers)
    node.clear_rules()
    node.rule(
        "0",
        "ip -4 -o addr show dev eth0",
        "2: eth0    inet 10.9.8.7/24 brd 10.9.8.255 scope global eth0\n",
    )
    healthy_cloud(node, "controller")
    run = node.run_agent("bash", "--non-interactive")
    assert run.returncode == 0, run.output
    assert "controller_address='10.9.8.7'" in node.path("/etc/stackops/answers").read_text()
    assert "--rabbit_host=10.9.8.7" in node.path("/etc/nova/nova.conf").read_text()


def test_systemd_base(tmp_path: Path, agent_deb: Path) -> None:
    """On a systemd base (no upstart): postinst enables the unit with the real systemctl, the
    agent restarts services with systemctl and disables its unit after success."""
    node = Node.create(tmp_path, init="systemd")
    node.rule("pass", "systemctl enable stackops-agent.service")
    node.rule("pass", "systemctl disable stackops-agent.service")
    out = node.install_deb(agent_deb)
    wants = node.path("/etc/systemd/system/multi-user.target.wants/stackops-agent.service")
    assert wants.is_symlink(), out
    assert not node.path("/etc/init/stackops-agent.conf").exists()
    node.write_answers({"roles": "compute", **BASE_ANSWERS})
    healthy_cloud(node)
    run = node.run_agent("dash", "--non-interactive")
    assert run.returncode == 0, run.output
    acts = node.actions()
    assert acts.index("systemctl restart libvirt-bin.service") < acts.index(
        "systemctl restart nova-compute.service"
    )
    assert "systemctl disable stackops-agent.service" in acts
    assert not wants.exists() and not wants.is_symlink()


def test_a_node_waits_for_the_controller_then_goes_on(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 14.9: a compute node waits (bounded, with progress on the console) for the
    controller's RabbitMQ and network; past the bound the step fails and a retry resumes."""
    node = make_node(tmp_path, agent_deb, "compute")
    node.rule("1", "socat *")  # the controller's RabbitMQ does not answer yet
    env = {"STACKOPS_CONTROLLER_WAIT": "3", "STACKOPS_POLL": "1", "STACKOPS_SETTLE": "0"}
    run = node.run_agent("dash", "--non-interactive", env=env)
    assert run.returncode == 1, run.output
    assert "STACKOPS waiting for the controller at 10.0.0.1 (0s of 3s)" in run.output
    assert "STACKOPS-FIRSTBOOT failed step=controller-ready" in run.output
    log = node.path("/var/log/stackops/steps/controller-ready.log").read_text()
    assert "was not ready within 3 s" in log
    assert not any(a.startswith("initctl start nova-compute") for a in node.actions())
    node.clear_rules()
    healthy_cloud(node)
    again = node.run_agent("dash", "--non-interactive", env=env)
    assert again.returncode == 0, again.output
    assert "STACKOPS-FIRSTBOOT done roles=compute" in again.output


def test_a_service_that_dies_at_once_fails_its_step(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 14.9: `initctl start` succeeds when the daemon dies at once; the agent looks again."""
    node = make_node(tmp_path, agent_deb, "compute")
    node.clear_rules()
    node.rule("0", "initctl status nova-compute", "nova-compute stop/waiting\n")
    healthy_cloud(node)
    run = node.run_agent("dash", "--non-interactive", env={"STACKOPS_SETTLE": "0"})
    assert run.returncode == 1, run.output
    assert "STACKOPS-FIRSTBOOT failed step=nova-compute" in run.output
    log = node.path("/var/log/stackops/steps/nova-compute.log").read_text()
    assert "nova-compute is not running a few seconds after its start" in log


def test_a_role_without_its_packages_is_refused(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 14.2: a chosen role whose metapackage is missing stops with a clear message."""
    node = make_node(tmp_path, agent_deb, "volume")
    node.remove_package("stackops-volume")
    run = node.run_agent("dash", "--non-interactive")
    assert run.returncode == 1, run.output
    assert "role volume needs its packages, and stackops-volume is not installed" in run.output
    assert "STACKOPS-FIRSTBOOT failed step=packages" in run.output
    assert node.actions() == [] or all(not a.startswith("initctl") for a in node.actions())


def test_role_selector_offers_the_architectures_nodes(tmp_path: Path, agent_deb: Path) -> None:
    """The numbered prompt also offers the reference architectures' multi-role nodes (from
    roles/architectures.yaml, via the agent's architectures table) as letters."""
    node = make_node(tmp_path, agent_deb, "")
    run = node.run_agent("dash", stdin="b\n")
    assert "  a) Install StackOps all-in-one (controller,network,volume,compute)" in run.output
    assert "  b) Install StackOps cloud controller (controller,network,volume)" in run.output
    assert run.returncode == 0, run.output
    assert "STACKOPS-FIRSTBOOT done roles=controller,network,volume" in run.output


@pytest.mark.parametrize(
    "output,code",
    [
        (NETWORK_LIST_HEADER + NOVA_MANAGE_FAILED, "1"),  # no schema yet / login refused
        (NETWORK_LIST_HEADER, "0"),  # schema there, network not created yet
    ],
    ids=["command-failed", "no-network-yet"],
)
def test_controller_not_ready_until_its_network_is_listed(
    tmp_path: Path, agent_deb: Path, output: str, code: str
) -> None:
    """Issue 22.1: real 2011.2 prints `network list`'s header before it queries the database,
    then on an error "Command failed ..." and exit 1 (the recorder prints exactly that): two
    lines, and not ready. Ready means exit 0 and a network row."""
    node = make_node(tmp_path, agent_deb, "compute")
    node.clear_rules()
    node.rule(code, "nova-manage * network list", output)
    healthy_cloud(node)
    env = {"STACKOPS_CONTROLLER_WAIT": "2", "STACKOPS_POLL": "1", "STACKOPS_SETTLE": "0"}
    run = node.run_agent("dash", "--non-interactive", env=env)
    assert run.returncode == 1, run.output
    assert "STACKOPS-FIRSTBOOT failed step=controller-ready" in run.output
    assert not any(a.startswith("initctl start nova-compute") for a in node.actions())


# Nova 2011.2 reads each string flag as string.Template(val).substitute(StrWrapper(context))
# (nova/flags.py:136-143); StrWrapper looks names up in the flags and raises KeyError otherwise.
def nova_flag_value(raw: str, flags: dict[str, str]) -> str:
    import string

    class StrWrapper:
        def __getitem__(self, name: str) -> str:
            return flags[name]

    return string.Template(raw).substitute(StrWrapper())


@pytest.mark.parametrize("shell", SHELLS)
def test_a_dollar_in_a_password_reaches_nova_intact(
    tmp_path: Path, agent_deb: Path, shell: str
) -> None:
    """Issue 22.2: a `$` in an answer is written `$$` in nova.conf, so Nova's string.Template
    substitution (run here with python3's string.Template and the same call as
    nova/flags.py:139-141) gives the answer back instead of KeyError/ValueError."""
    node = make_node(tmp_path, agent_deb, "compute")
    secret = "ra$bbit$1 ${rabbit_host}$$x$"
    node.write_answers({"roles": "compute", **BASE_ANSWERS, "rabbit_password": secret})
    run = node.run_agent(shell, "--non-interactive", env={"STACKOPS_SETTLE": "0"})
    assert run.returncode == 0, run.output
    flags = parse_nova_conf(node.path("/etc/nova/nova.conf").read_text())
    assert nova_flag_value(flags["rabbit_password"], flags) == secret
    for raw in flags.values():
        nova_flag_value(raw, flags)  # every flag substitutes without an error


def test_network_create_is_not_run_twice(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 22.12: real 2011.2 exits 0 and adds a second network when `network create` runs
    again (docs/nova-2011.2-facts.md §1.3); when `network list` shows fixed_range the step
    leaves it."""
    node = make_node(tmp_path, agent_deb, "controller")
    node.clear_rules()
    healthy_cloud(node)  # network list shows 192.168.100.0/24 (a power cut after create)
    run = node.run_agent("bash", "--non-interactive", env={"STACKOPS_SETTLE": "0"})
    assert run.returncode == 0, run.output
    assert not any(" network create " in a for a in node.actions())
    log = node.path("/var/log/stackops/steps/network-create.log").read_text()
    assert "network 192.168.100.0/24 exists" in log


def test_floating_range_already_there(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 22.12: a power cut after `floating create`: the range is not created again, and
    the network/broadcast addresses still there are deleted."""
    node = make_node(tmp_path, agent_deb, "network")
    node.clear_rules()
    rows = "".join(f"node1\t10.0.1.{i}\tNone\n" for i in range(0, 255))  # .255 deleted already
    node.rule("0", "nova-manage * floating list", rows)
    healthy_cloud(node)
    run = node.run_agent("dash", "--non-interactive", env={"STACKOPS_SETTLE": "0"})
    assert run.returncode == 0, run.output
    acts = node.actions()
    assert not any(" floating create " in a for a in acts)
    assert [a for a in acts if " floating delete " in a] == [
        "nova-manage --flagfile=/etc/nova/nova.conf floating delete 10.0.1.0/32"
    ]


def test_the_address_comes_after_the_agent_starts(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 22.5: the lucid job starts on `starting tty1`, before DHCP may have bound: the
    agent waits (bounded) for public_interface's address instead of writing nova.conf without
    --my_ip. The recorder's `ip` answers nothing for 2 s, then the address."""
    import threading

    node = make_node(tmp_path, agent_deb, "compute")
    node.clear_rules()
    node.rule("0", "ip -4 -o addr show dev eth0", "")
    healthy_cloud(node)

    def lease() -> None:
        node.clear_rules()
        healthy_cloud(node)

    timer = threading.Timer(2.0, lease)
    timer.start()
    try:
        run = node.run_agent("bash", "--non-interactive", env={"STACKOPS_ADDRESS_WAIT": "30"})
    finally:
        timer.cancel()
    assert run.returncode == 0, run.output
    assert "STACKOPS waiting for an IPv4 address on eth0" in run.output
    flags = parse_nova_conf(node.path("/etc/nova/nova.conf").read_text())
    assert flags["my_ip"] == NODE_ADDRESS


def test_no_address_fails_clearly(tmp_path: Path, agent_deb: Path) -> None:
    """Issue 22.5: no address within the bound: the nova-conf step fails and says why (before,
    nova.conf silently lost --my_ip)."""
    node = make_node(tmp_path, agent_deb, "compute")
    node.clear_rules()
    node.rule("0", "ip -4 -o addr show dev eth0", "")
    healthy_cloud(node)
    run = node.run_agent("dash", "--non-interactive", env={"STACKOPS_ADDRESS_WAIT": "2"})
    assert run.returncode == 1, run.output
    assert "STACKOPS-FIRSTBOOT failed step=nova-conf" in run.output
    log = node.path("/var/log/stackops/steps/nova-conf.log").read_text()
    assert "no IPv4 address on eth0 within 2 s" in log


def test_all_in_one_makes_its_own_answers(tmp_path: Path, agent_deb: Path) -> None:
    """ESXi-easy (issue 22): an all-in-one's installer asked only the administrator's secret;
    the agent generates the service passwords (kept 0600 in the answers file, never logged),
    takes the default route's interface as public_interface and a second NIC without an address
    as flat_interface (a fake /sys/class/net: eth0 and eth1 are NICs, eth1 has no address)."""
    roles = "controller,network,volume,compute"
    node = make_node(tmp_path, agent_deb, roles)
    node.write_answers({"roles": roles, "hostname": "node1", "admin_password": "adm1n Secret 4",
                        "volume_device": "/dev/sdb"})  # fmt: skip
    sysnet = node.path("/fake-sys-net")
    for nic in ("eth0", "eth1", "lo"):
        (sysnet / nic).mkdir(parents=True)
        if nic != "lo":
            (sysnet / nic / "device").touch()
    healthy_cloud(node, roles)
    node.rule("0", "ip -4 route show default", "default via 10.0.0.254 dev eth0\n")
    run = node.run_agent("dash", "--non-interactive", env={"SO_SYS_NET": "/fake-sys-net"})
    assert run.returncode == 0, run.output
    text = node.path("/etc/stackops/answers").read_text()
    assert stat.S_IMODE(node.path("/etc/stackops/answers").stat().st_mode) == 0o600
    made = dict(re.findall(r"^(\w+)='([^']*)'$", text, re.M))
    secrets = [made[k] for k in ("nova_db_password", "rabbit_password", "mysql_root_password")]
    assert all(re.fullmatch(r"[A-Za-z0-9]{24}", s) for s in secrets), secrets
    assert len(set(secrets)) == 3
    assert made["public_interface"] == "eth0" and made["flat_interface"] == "eth1"
    flags = parse_nova_conf(node.path("/etc/nova/nova.conf").read_text())
    assert flags["flat_interface"] == "eth1" and flags["public_interface"] == "eth0"
    logs = run.output + "".join(
        p.read_text() for p in node.path("/var/log/stackops").rglob("*.log")
    )
    assert not [s for s in secrets if s in logs], "a generated password reached a log"


def test_all_in_one_on_one_nic_takes_dummy0(tmp_path: Path, agent_deb: Path) -> None:
    roles = "controller,network,volume,compute"
    node = make_node(tmp_path, agent_deb, roles)
    node.write_answers({
        "roles": roles, "hostname": "node1", "public_interface": "eth0",
        "volume_device": "/dev/sdb", **SECRETS,
    })  # fmt: skip
    (node.path("/fake-sys-net") / "eth0").mkdir(parents=True)
    (node.path("/fake-sys-net") / "eth0" / "device").touch()
    healthy_cloud(node, roles)
    run = node.run_agent("dash", "--non-interactive", env={"SO_SYS_NET": "/fake-sys-net"})
    assert run.returncode == 0, run.output
    assert "flat_interface='dummy0'" in node.path("/etc/stackops/answers").read_text()
    assert "modprobe dummy" in node.actions()
    assert "dummy" in node.path("/etc/modules").read_text().split()


def test_the_controller_waits_for_its_address_instead_of_asking(
    tmp_path: Path, agent_deb: Path
) -> None:
    """Issue 22.5: controller_address is the controller's own address (skip_with). With no
    address within the bound the agent fails and says so; it does not ask on the console for
    what is this node's own address (before, the console's answer was taken)."""
    node = make_node(tmp_path, agent_deb, "controller")
    node.write_answers({"roles": "controller", **SECRETS})
    node.clear_rules()
    node.rule("0", "ip -4 -o addr show dev eth0", "")
    healthy_cloud(node, "controller")
    run = node.run_agent(
        "dash", stdin="10.0.0.9\n" * 5, env={"STACKOPS_ADDRESS_WAIT": "2", "STACKOPS_PLAIN": "1"}
    )
    assert run.returncode == 1, run.output
    assert "controller_address" not in node.path("/etc/stackops/answers").read_text()
    assert "no IPv4 address on eth0 within 2 s" in run.output
    assert "controller_address is this node's own address" in run.output


@pytest.mark.parametrize("shell", SHELLS)
def test_unchosen_roles_do_not_run_after_the_next_boot(
    tmp_path: Path, agent_deb: Path, shell: str
) -> None:
    """Issue 22.4: a node has every role's packages (choose roles later: the test root has every
    job); the jobs of the roles it did not get are stopped and renamed *.conf.disabled (upstart
    0.6.5), the chosen roles' stay."""
    node = make_node(tmp_path, agent_deb, "compute")
    run = node.run_agent(shell, "--non-interactive")
    assert run.returncode == 0, run.output
    for job in ("nova-network", "nova-volume", "nova-api", "mysql", "glance-api"):
        assert not node.path(f"/etc/init/{job}.conf").exists(), job
        assert node.path(f"/etc/init/{job}.conf.disabled").is_file(), job
        assert f"initctl stop {job}" in node.actions()
    for job in ("nova-compute", "libvirt-bin"):
        assert node.path(f"/etc/init/{job}.conf").is_file(), job
