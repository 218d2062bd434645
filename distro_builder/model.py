"""Frozen records passed between modules. No I/O here. The records of an image (names, boot
entries, the isolinux menu, a remaster's result) are in imagemodel.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemoPackage:
    """A tiny stand-in package of the demo base (real name, version and relations)."""

    name: str
    version: str
    arch: str
    section: str
    priority: str
    component: str = "main"
    source: str | None = None
    depends: str | None = None
    task: str | None = None
    udeb: bool = False


@dataclass(frozen=True, slots=True)
class BootPart:
    """A file the demo base takes from a Debian package on the build host."""

    package: str
    path: str


@dataclass(frozen=True, slots=True)
class DemoDisc:
    """demo/disc.yaml: what the lucid-faithful demo base is made of."""

    volume_id: str
    disk_info: str
    disk_name: str
    codename: str
    version: str
    arch: str
    components: tuple[str, ...]
    epoch: int
    release: tuple[tuple[str, str], ...]
    maintainer: str
    isolinux: BootPart
    modules: tuple[BootPart, ...]
    kernel: BootPart
    initrd: BootPart
    memtest: BootPart
    packages: tuple[DemoPackage, ...]


# -- packages: lists, repositories, resolution (roles/*/role.yaml, archive/) ----------------


@dataclass(frozen=True, slots=True)
class PackageListEntry:
    """One entry of a package list: a name, optionally limited to (or excluded from) arches,
    optionally with a version relation (and why it is needed)."""

    name: str
    arch: tuple[str, ...] = ()  # only on these architectures (empty: all)
    not_arch: tuple[str, ...] = ()  # never on these
    op: str | None = None  # a version relation the package must meet: <<, <=, =, >=, >>
    version: str | None = None
    why: str = ""  # why the version is needed: the hint when no candidate meets it

    def applies(self, arch: str) -> bool:
        return (not self.arch or arch in self.arch) and arch not in self.not_arch

    @property
    def relation(self) -> str:
        """The entry as a Depends relation: `name` or `name (op version)`."""
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


@dataclass(frozen=True, slots=True)
class RepoSpec:
    """A package repository, as an apt source: `deb [options] URL SUITE COMPONENT...`.

    A flat repository (a local directory of .debs, or `URL ./`) has suite '' or ending in '/'
    and no components.
    """

    url: str  # file:///..., http(s)://...
    suite: str
    components: tuple[str, ...]
    arch: str = "amd64"
    keyring: str | None = None  # path of an OpenPGP keyring: the Release signature is checked
    trusted: bool = False  # [trusted=yes]: unsigned on purpose (still said loudly)
    mirrors: tuple[str, ...] = ()  # more URLs of the same repository, asked when `url` fails

    @property
    def flat(self) -> bool:
        return not self.components


@dataclass(frozen=True, slots=True)
class IndexPackage:
    """One binary package as an index (or the disc) describes it."""

    name: str
    version: str
    arch: str
    origin: str  # where it is, for people: 'lucid/universe', 'disc lucid/main', 'extras'
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    conflicts: str = ""
    breaks: str = ""
    multi_arch: str = ""
    source: str = ""
    section: str = ""
    filename: str = ""  # relative to the repository root (checked: no '..', not absolute)
    size: int = 0
    sha256: str = ""
    sha1: str = ""
    md5: str = ""
    repo: str = ""  # the repository's URL ('' for the disc and local extras)
    on_disc: bool = False

    @property
    def key(self) -> str:
        """name_version_arch: identifies a package file."""
        return f"{self.name}_{self.version}_{self.arch}"


@dataclass(frozen=True, slots=True)
class RolePlan:
    """The resolution of one role: its roots, their closure, split into on-disc and to-add."""

    role: str
    roots: tuple[str, ...]
    closure: tuple[IndexPackage, ...]
    on_disc: tuple[IndexPackage, ...]
    to_add: tuple[IndexPackage, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """What each role needs and what the disc must gain (the union of the roles' to_add)."""

    arch: str
    codename: str
    roles: tuple[RolePlan, ...]
    to_add: tuple[IndexPackage, ...]
    repositories: tuple[str, ...] = ()
    unauthenticated: tuple[str, ...] = ()  # repositories read without a signature check


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What stage_packages put into the overlay, and the trust facts the preseed needs."""

    component: str  # 'extras'
    packages: tuple[str, ...]  # pool paths added under the overlay
    metapackages: tuple[str, ...]  # 'stackops-compute', ...
    index_files: tuple[str, ...]  # dists/... paths written
    release_path: str  # '/dists/lucid/Release'
    signed: bool  # a Release.gpg was written
    sign_key: str | None  # fingerprint of the signing key
    keyring_packages: tuple[str, ...]  # rebuilt keyring packages ('ubuntu-keyring', ...)
    allow_unauthenticated: bool  # the preseed must set debian-installer/allow_unauthenticated
    stale_paths: tuple[str, ...] = ()  # base files that are now wrong and must be removed


@dataclass(frozen=True, slots=True)
class DemoRepoPackage:
    """A tiny stand-in package of a demo repository (demo/ppa.yaml)."""

    name: str
    version: str
    arch: str
    section: str
    priority: str
    component: str
    source: str | None = None
    depends: str | None = None
    pre_depends: str | None = None
    provides: str | None = None
    recommends: str | None = None


@dataclass(frozen=True, slots=True)
class DemoRepo:
    """One demo apt repository (the lucid archive slice, the Cactus PPA)."""

    name: str
    description: str
    origin: str
    label: str
    suite: str
    codename: str
    version: str
    arch: str
    components: tuple[str, ...]
    packages: tuple[DemoRepoPackage, ...]


@dataclass(frozen=True, slots=True)
class DemoRepos:
    """demo/ppa.yaml."""

    maintainer: str
    epoch: int
    repositories: tuple[DemoRepo, ...]


# -- roles, reference architectures, deployments, boot entries (roles/, preseed/) --------------


@dataclass(frozen=True, slots=True)
class Question:
    """One install-time question; its key is an answers-file key (/etc/stackops/answers)."""

    key: str
    type: str  # config/questions.QUESTION_TYPES
    prompt: str
    description: str
    default: str | None = None  # None: no default (must be answered)
    choices: tuple[str, ...] = ()  # type choice
    minimum: int | None = None  # type int: the least value; type password: the fewest characters
    maximum: int | None = None
    confirm: bool = False  # passwords: asked twice, must match
    skip_with: tuple[str, ...] = ()  # not asked when the node also has one of these roles
    fallback: str | None = None  # a d-i question whose answer is used when this one has none
    optional: bool = False  # an empty answer is valid
    per_node: bool = False  # differs from node to node (deployment: nodes[].answers)
    defined_in: str = ""  # the file that defines it (for errors)
    # "generate" (a password) or "find" (an interface): made by the node agent, not asked, on a
    # node that has every role asking it: no other node can need it (issue 22, ESXi-easy)
    made_on_node: str = ""

    @property
    def secret(self) -> bool:
        return self.type == "password"


@dataclass(frozen=True, slots=True)
class Role:
    """roles/<name>/: role.yaml with its includes resolved, and the files beside it."""

    name: str
    description: str
    order: int  # position in menus, answers and first-boot plans (lowest first)
    packages: tuple[PackageListEntry, ...]  # its own `packages:`
    services: tuple[str, ...]  # the daemons it runs
    steps: tuple[str, ...]  # its first-boot steps (so_step_<name> in steps.sh), in order
    questions: tuple[str, ...]  # question keys, includes first
    includes: tuple[str, ...]  # every role it includes, directly or not, breadth first
    abstract: bool  # only included by other roles (shared), never a node role
    max_per_deployment: int | None  # None: any number of nodes may have it
    path: str  # the role's folder
    # steps that run after every role of the node (the controller's health check), in order
    final_steps: tuple[str, ...] = ()
    # its volume group may live on the node's one disk: the installer's partitioning leaves room
    # there (preseed: the stackops-volumes recipe; issue 22 finding 8)
    volume_space: bool = False


@dataclass(frozen=True, slots=True)
class ArchitectureNode:
    """One node of a reference architecture."""

    name: str
    label: str  # boot menu text
    roles: tuple[str, ...]
    min_count: int = 1  # how many nodes of this shape a deployment of the architecture has
    max_count: int | None = 1  # None: any number


@dataclass(frozen=True, slots=True)
class Architecture:
    """A reference architecture: single-node, dual-node, multi-node."""

    name: str
    description: str
    nodes: tuple[ArchitectureNode, ...]


@dataclass(frozen=True, slots=True)
class RoleSet:
    """Everything under roles/: roles, questions, reference architectures, extra menu entries."""

    roles: tuple[Role, ...]  # node roles in role order
    questions: tuple[Question, ...]  # every question, in asking order
    architectures: tuple[Architecture, ...]
    first_boot_entry: ArchitectureNode | None  # the entry whose roles are chosen on first boot
    shared: tuple[Role, ...] = ()  # abstract roles (roles/base, ...), included by node roles

    @property
    def names(self) -> tuple[str, ...]:
        """The node roles' names, in role order."""
        return tuple(r.name for r in self.roles)

    def role(self, name: str) -> Role:
        for r in (*self.roles, *self.shared):
            if r.name == name:
                return r
        raise KeyError(name)

    def question(self, key: str) -> Question:
        for q in self.questions:
            if q.key == key:
                return q
        raise KeyError(key)

    def architecture(self, name: str) -> Architecture:
        for a in self.architectures:
            if a.name == name:
                return a
        raise KeyError(name)

    def ordered(self, roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """`roles` in role order (unknown names last, by name)."""
        order = {n: i for i, n in enumerate(self.names)}
        return tuple(sorted(roles, key=lambda r: (order.get(r, len(order)), r)))

    def asked_by(self, key: str) -> tuple[str, ...]:
        """The node roles that ask question `key` (their own or through includes)."""
        return tuple(r.name for r in self.roles if key in r.questions)

    def made_here(self, q: Question, roles: tuple[str, ...]) -> bool:
        """Is `q` made on a node with `roles` (made_on_node, and the node has every role that
        asks it) instead of asked?"""
        return bool(q.made_on_node) and set(self.asked_by(q.key)) <= set(roles)

    def whole_cloud(self, roles: tuple[str, ...]) -> bool:
        """Is a node with `roles` a whole cloud (every node role)? Its installer asks only the
        questions without a default that are not made on the node."""
        return bool(roles) and set(roles) == set(self.names)

    def questions_for(self, roles: tuple[str, ...]) -> tuple[Question, ...]:
        """The questions a node with `roles` is asked, in order."""
        keys: set[str] = set()
        for name in roles:
            keys.update(self.role(name).questions)
        return tuple(
            q for q in self.questions if q.key in keys and not (set(q.skip_with) & set(roles))
        )


@dataclass(frozen=True, slots=True)
class DeploymentNode:
    """A node named in a deployment file, with its own values (hostname, interfaces...)."""

    name: str
    roles: tuple[str, ...]
    answers: tuple[tuple[str, str], ...]
    line: int


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """The installed system's settings: locale, keyboard, time zone, the login user."""

    locale: str = "en_US"
    keyboard: str = "us"
    timezone: str = "UTC"
    username: str = "stackops"
    fullname: str = "StackOps administrator"
    password_crypted: str | None = None  # SHA-512 crypt; None: the installer asks


DEFAULT_INSTALLER_WAIT = 3600  # seconds; the node client's default too


@dataclass(frozen=True, slots=True)
class InstallerSettings:
    """The Smart Installer a disc's nodes ask for their roles (build --installer-url)."""

    url: str  # http(s)://host[:port][/path], no trailing slash
    token: str  # the deployment's enrolment token: a secret, on the disc in plain text
    fingerprint: str | None = None  # SHA-256 of the service's certificate, "AB:CD:..." (https)
    wait: int = DEFAULT_INSTALLER_WAIT  # seconds a node waits for its roles, then falls back


@dataclass(frozen=True, slots=True)
class NetworkInstall:
    """A node installed over the network from `serve --disc` (the served preseed's mirror and
    its report that the install finished)."""

    mirror: str  # host:port of the service, which serves the disc's archive under /disc
    suite: str  # the disc's codename
    report_url: str  # GET when the install finished; the answer is the node's registration


@dataclass(frozen=True, slots=True)
class Deployment:
    """deployment.yaml: a deployment's global answers, once, plus optional per-node values."""

    path: str
    architecture: str | None
    answers: tuple[tuple[str, str], ...]  # global answers (validated)
    nodes: tuple[DeploymentNode, ...]
    system: SystemSettings
    plaintext_on_disc: tuple[str, ...]  # secret keys that will be readable on the disc


# The advanced menu's expert-mode variant of entry NAME is labelled NAME + EXPERT_SUFFIX.
EXPERT_SUFFIX = "-expert"


@dataclass(frozen=True, slots=True)
class BootEntry:
    """One StackOps boot menu entry and the preseed it loads."""

    name: str  # 'all-in-one', 'compute', ...; the seed is /preseed/stackops-<name>.seed
    label: str  # 'Install StackOps all-in-one'
    roles: tuple[str, ...]
    answers: tuple[tuple[str, str], ...] = ()  # baked into the preseed (deployment)
    cmdline: tuple[tuple[str, str], ...] = ()  # extra stackops/<key>=value on the command line

    @property
    def seed_path(self) -> str:
        return f"/preseed/stackops-{self.name}.seed"


# The kernel the installer installs from the disc (preseed base-installer/kernel/override-image),
# by architecture; the package set matches kernel headers to it (issue 22 finding 9).
KERNEL_IMAGES = {"amd64": "linux-server", "i386": "linux-generic-pae"}
