"""The resolver against every relation kind: alternatives, Provides, each version operator, epochs
and tildes, Pre-Depends, Architecture all/any/other, multi-arch :any, cycles, restarts, and
unsatisfiable relations with the chain that pulled them in."""

from __future__ import annotations

import pytest

from distro_builder.archive.resolve import (
    Universe,
    parse_relations,
    plan_roles,
    resolve,
    version_satisfies,
)
from distro_builder.errors import DependencyError
from distro_builder.model import IndexPackage


def pkg(name: str, version: str = "1.0", arch: str = "all", **kw: object) -> IndexPackage:
    origin = str(kw.pop("origin", "disc lucid/main" if kw.get("on_disc") else "lucid/main"))
    return IndexPackage(name=name, version=version, arch=arch, origin=origin, **kw)  # type: ignore[arg-type]


def names(packages: tuple[IndexPackage, ...]) -> dict[str, str]:
    return {p.name: p.version for p in packages}


def closure(roots: list[str], *sources: list[IndexPackage], arch: str = "amd64") -> dict[str, str]:
    return names(resolve(roots, Universe(sources, arch)).packages)


@pytest.mark.parametrize(
    ("have", "op", "want", "ok"),
    [
        ("1.0", "<<", "1.1", True),
        ("1.1", "<<", "1.1", False),
        ("1.1", "<=", "1.1", True),
        ("1.2", "<=", "1.1", False),
        ("1.1", "=", "1.1", True),
        ("1.1", "=", "1.1-0", True),  # an absent revision equals an empty one (dpkg)
        ("1.1-1", "=", "1.1", False),
        ("1.1", ">=", "1.1", True),
        ("1.0", ">=", "1.1", False),
        ("1.2", ">>", "1.1", True),
        ("1.1", ">>", "1.1", False),
        ("1:0.1", ">>", "9.9", True),  # epochs win
        ("2011.2-0ubuntu0ppa1~lucid1", "<<", "2011.2-0ubuntu0ppa1", True),  # tilde sorts first
        ("1.0~rc1", "<<", "1.0", True),
        ("0.9.12-0ubuntu2~lucid1", ">=", "0.9.12", True),
        ("0.9.10-1", ">=", "0.9.12", False),
        ("1.9b-1ubuntu3", ">=", "1.8d", True),
        ("1:13.b.3-dfsg-2ubuntu2", "<<", "1:13.b-dfsg1-1", False),
    ],
)
def test_version_operators_follow_dpkg(have: str, op: str, want: str, ok: bool) -> None:
    assert version_satisfies(have, op, want) is ok


def test_parse_relations_groups_alternatives_versions_and_archqual() -> None:
    groups = parse_relations("a (>= 1:2.0~b), b | c (<< 3), python3:any")
    assert [[str(r) for r in g] for g in groups] == [
        ["a (>= 1:2.0~b)"],
        ["b", "c (<< 3)"],
        ["python3:any"],
    ]


def test_depends_and_pre_depends_are_followed_recommends_are_not() -> None:
    got = closure(
        ["top"],
        [
            pkg("top", depends="lib", pre_depends="early"),
            pkg("lib", depends="base"),
            pkg("early"),
            pkg("base"),
            pkg("recommended"),
        ],
    )
    assert set(got) == {"top", "lib", "early", "base"}


def test_first_available_alternative_is_taken_like_apt() -> None:
    got = closure(
        ["logrotate"], [pkg("logrotate", depends="cron | anacron"), pkg("cron"), pkg("anacron")]
    )
    assert set(got) == {"logrotate", "cron"}


def test_missing_first_alternative_falls_through() -> None:
    got = closure(["x"], [pkg("x", depends="erlang-base-hipe | erlang-base"), pkg("erlang-base")])
    assert set(got) == {"x", "erlang-base"}


def test_an_alternative_already_chosen_satisfies_the_group() -> None:
    got = closure(
        ["a", "b"], [pkg("a", depends="y"), pkg("b", depends="x | y"), pkg("x"), pkg("y")]
    )
    assert set(got) == {"a", "b", "y"}


def test_versioned_alternative_rules_out_a_too_new_package() -> None:
    # rabbitmq-server: erlang-ssl | erlang-nox (<< 1:13.b-dfsg1-1); erlang-ssl absent, nox too new
    universe = [
        pkg("rabbitmq-server", depends="erlang-ssl | erlang-nox (<< 1:13.b-dfsg1-1)"),
        pkg("erlang-nox", "1:13.b.3-dfsg-2ubuntu2"),
    ]
    with pytest.raises(DependencyError) as e:
        closure(["rabbitmq-server"], universe)
    msg = str(e.value)
    assert msg.startswith("rabbitmq-server -> erlang-ssl | erlang-nox (<< 1:13.b-dfsg1-1): ")
    assert "erlang-ssl: not on the disc nor in any repository" in msg
    assert "erlang-nox: no candidate; 1:13.b.3-dfsg-2ubuntu2 in lucid/main" in msg


def test_virtual_package_is_satisfied_by_a_provider() -> None:
    got = closure(
        ["erlang-ssl"],
        [
            pkg("erlang-ssl", depends="erlang-abi-13.a"),
            pkg("erlang-base", provides="erlang-abi-13.a"),
        ],
    )
    assert set(got) == {"erlang-ssl", "erlang-base"}


def test_provider_on_the_disc_is_preferred_then_by_name() -> None:
    got = closure(
        ["x"],
        [pkg("x", depends="mail-transport-agent")],
        [pkg("postfix", on_disc=True, provides="mail-transport-agent")],
        [pkg("exim4", provides="mail-transport-agent")],
    )
    assert set(got) == {"x", "postfix"}
    got = closure(
        ["x"],
        [pkg("x", depends="mta"), pkg("zmailer", provides="mta"), pkg("exim4", provides="mta")],
    )
    assert set(got) == {"x", "exim4"}


def test_real_package_wins_over_providers() -> None:
    got = closure(["x"], [pkg("x", depends="foo"), pkg("foo"), pkg("bar", provides="foo")])
    assert set(got) == {"x", "foo"}


def test_unversioned_provides_does_not_satisfy_a_versioned_relation() -> None:
    with pytest.raises(DependencyError, match="provided by bar without a suitable version"):
        closure(["x"], [pkg("x", depends="foo (>= 2)"), pkg("bar", provides="foo")])
    got = closure(["x"], [pkg("x", depends="foo (>= 2)"), pkg("bar", provides="foo (= 2.1)")])
    assert set(got) == {"x", "bar"}


def test_disc_version_is_preferred_when_it_satisfies() -> None:
    got = closure(
        ["x"],
        [pkg("x", depends="lib (>= 1)")],
        [pkg("lib", "1.5", on_disc=True)],
        [pkg("lib", "2.0")],
    )
    assert got["lib"] == "1.5"


def test_highest_version_when_the_disc_has_none() -> None:
    got = closure(
        ["x"], [pkg("x", depends="lib")], [pkg("lib", "0.2-1"), pkg("lib", "0.3.1-1ubuntu5~lucid1")]
    )
    assert got["lib"] == "0.3.1-1ubuntu5~lucid1"


def test_a_later_versioned_relation_upgrades_an_earlier_pick() -> None:
    # python-greenlet listed bare (disc/old version picked) and needed >= 0.3.1 by eventlet
    got = closure(
        ["python-greenlet", "python-eventlet"],
        [pkg("python-greenlet", "0.2-1", on_disc=True)],
        [
            pkg("python-greenlet", "0.3.1-1ubuntu5~lucid1"),
            pkg("python-eventlet", "0.9.12", depends="python-greenlet (>= 0.3.1)"),
        ],
    )
    assert got["python-greenlet"] == "0.3.1-1ubuntu5~lucid1"


def test_conflicting_version_constraints_fail_with_both_reasons() -> None:
    with pytest.raises(DependencyError) as e:
        closure(
            ["a", "b"],
            [
                pkg("a", depends="lib (= 1.0)"),
                pkg("b", depends="lib (>= 2.0)"),
                pkg("lib", "1.0"),
                pkg("lib", "2.0"),
            ],
        )
    assert "lib" in str(e.value) and "no version also satisfies" in str(e.value)


def test_architecture_all_and_target_are_candidates_others_not() -> None:
    u = [
        pkg("x", depends="a, b"),
        pkg("a", arch="amd64"),
        pkg("b", arch="all"),
        pkg("c", arch="i386"),
    ]
    assert set(closure(["x"], u)) == {"x", "a", "b"}
    with pytest.raises(DependencyError, match=r"c: no candidate; only for i386, not amd64"):
        closure(["c"], u)


def test_any_archqual_needs_multi_arch_allowed() -> None:
    ok = [pkg("x", depends="perl:any"), pkg("perl", arch="amd64", multi_arch="allowed")]
    assert set(closure(["x"], ok)) == {"x", "perl"}
    with pytest.raises(DependencyError):
        closure(["x"], [pkg("x", depends="perl:any"), pkg("perl", arch="amd64")])


def test_cycles_terminate() -> None:
    got = closure(["a"], [pkg("a", depends="b"), pkg("b", depends="c"), pkg("c", depends="a")])
    assert set(got) == {"a", "b", "c"}


def test_unsatisfiable_version_names_the_chain_and_what_exists() -> None:
    universe = [
        pkg("nova-compute", depends="python-nova"),
        pkg("python-nova", depends="python-eventlet (>= 0.9.12)"),
        pkg("python-eventlet", "0.9.10", origin="lucid/universe"),
    ]
    with pytest.raises(DependencyError) as e:
        closure(["nova-compute"], universe)
    assert str(e.value) == (
        "nova-compute -> python-nova -> python-eventlet (>= 0.9.12): "
        "no candidate; 0.9.10 in lucid/universe"
    )


def test_unknown_root_is_reported() -> None:
    with pytest.raises(DependencyError, match="^nova-foo: not on the disc nor in any repository$"):
        closure(["nova-foo"], [pkg("x")])


def test_plan_splits_disc_and_additions_per_role_and_unions_them() -> None:
    u = Universe(
        [
            [pkg("python", "2.6.5", on_disc=True)],
            [
                pkg("nova-compute", depends="python-nova, python"),
                pkg("nova-network", depends="python-nova, dnsmasq-base"),
                pkg("python-nova", depends="python (>= 2.6)"),
                pkg("dnsmasq-base", arch="amd64"),
            ],
        ],
        "amd64",
    )
    plan = plan_roles(
        {"compute": ["nova-compute"], "network": ["nova-network"]}, u, codename="lucid"
    )
    compute, network = plan.roles
    assert [p.name for p in compute.on_disc] == ["python"]
    assert [p.name for p in compute.to_add] == ["nova-compute", "python-nova"]
    assert [p.name for p in network.to_add] == ["dnsmasq-base", "nova-network", "python-nova"]
    assert [p.name for p in plan.to_add] == [
        "dnsmasq-base",
        "nova-compute",
        "nova-network",
        "python-nova",
    ]


def test_conflicts_in_the_closure_fail_with_both_chains() -> None:
    repo = [
        pkg("nova-compute", depends="python-nova, libvirt-bin"),
        pkg("python-nova", depends="python-eventlet"),
        pkg("python-eventlet", "0.9.10"),
        pkg("libvirt-bin", conflicts="python-eventlet (<< 0.9.12)"),
    ]
    with pytest.raises(DependencyError) as e:
        closure(["nova-compute"], repo)
    msg = str(e.value)
    assert "nova-compute -> libvirt-bin conflicts with python-eventlet (<< 0.9.12)" in msg
    assert (
        "python-eventlet 0.9.10 is pulled in by nova-compute -> python-nova -> python-eventlet"
        in msg
    )
    assert e.value.hint
    # Out of the conflicting range: no conflict.
    repo[2] = pkg("python-eventlet", "0.9.12")
    assert closure(["nova-compute"], repo)["python-eventlet"] == "0.9.12"


def test_breaks_counts_like_conflicts() -> None:
    repo = [pkg("a", depends="b, c"), pkg("b", breaks="c"), pkg("c")]
    with pytest.raises(DependencyError, match=r"a -> b breaks c; c 1.0 is pulled in by a -> c"):
        closure(["a"], repo)


def test_conflict_on_a_virtual_name_hits_its_providers_but_not_the_package_itself() -> None:
    # The Provides+Conflicts idiom (postfix: Provides/Conflicts mail-transport-agent) is fine
    # alone, and stops a second provider.
    mta = dict(provides="mail-transport-agent", conflicts="mail-transport-agent")
    assert closure(["postfix"], [pkg("postfix", **mta)]) == {"postfix": "1.0"}
    repo = [pkg("a", depends="postfix, exim4"), pkg("postfix", **mta), pkg("exim4", **mta)]
    with pytest.raises(
        DependencyError,
        match=r"a -> exim4 conflicts with mail-transport-agent; "
        r"postfix 1.0 \(provides mail-transport-agent\) is pulled in by a -> postfix",
    ):
        closure(["a"], repo)
    # A versioned conflict is not hit by an unversioned Provides.
    repo = [pkg("a", depends="b, c"), pkg("b", conflicts="v (<< 2)"), pkg("c", provides="v")]
    assert set(closure(["a"], repo)) == {"a", "b", "c"}


def test_a_versioned_root_skips_an_older_disc_package_and_says_why() -> None:
    """A role's `libvirt-bin (>= 0.8.1)`: the disc's 0.7.5 is refused, a repository's 0.8.8 is
    taken (with its own libvirt0), and with no such repository the error names the disc's version
    and the hint is the role's why."""
    disc = [
        pkg("libvirt0", "0.7.5-5ubuntu27.12", on_disc=True),
        pkg("libvirt-bin", "0.7.5-5ubuntu27.12", on_disc=True,
            depends="libvirt0 (= 0.7.5-5ubuntu27.12)"),
    ]  # fmt: skip
    ppa = [
        pkg("libvirt0", "0.8.8-1ubuntu3~ppalucid1"),
        pkg(
            "libvirt-bin",
            "0.8.8-1ubuntu3~ppalucid1",
            depends="libvirt0 (= 0.8.8-1ubuntu3~ppalucid1)",
        ),
        pkg("nova-compute", depends="libvirt-bin"),
    ]
    roots = ["nova-compute", "libvirt-bin (>= 0.8.1)"]
    assert closure(roots, disc, ppa) == {
        "nova-compute": "1.0",
        "libvirt-bin": "0.8.8-1ubuntu3~ppalucid1",
        "libvirt0": "0.8.8-1ubuntu3~ppalucid1",
    }
    assert closure(["nova-compute", "libvirt-bin"], disc, ppa)["libvirt-bin"].startswith("0.7.5")
    notes = {"libvirt-bin (>= 0.8.1)": "nwfilter came in 0.8.1."}
    with pytest.raises(DependencyError) as e:
        resolve(roots, Universe([disc, ppa[2:]], "amd64"), notes)
    assert (
        str(e.value)
        == "libvirt-bin (>= 0.8.1): no candidate; 0.7.5-5ubuntu27.12 in disc lucid/main"
    )
    assert e.value.hint is not None
    assert e.value.hint.startswith(
        "libvirt-bin (>= 0.8.1) is required: nwfilter came in 0.8.1. Add"
    )
    # the note is for the root only: the same relation deeper in the graph keeps its chain
    with pytest.raises(DependencyError) as e:
        resolve(
            ["x"], Universe([disc, [pkg("x", depends="libvirt-bin (>= 0.8.1)")]], "amd64"), notes
        )
    assert str(e.value).startswith("x -> libvirt-bin (>= 0.8.1): no candidate")


@pytest.mark.parametrize("root", ["a (>= 1", "a, b", "(>= 1)"])
def test_a_root_that_is_not_one_relation_is_refused(root: str) -> None:
    with pytest.raises(DependencyError, match="not one package relation"):
        resolve([root], Universe([[pkg("a"), pkg("b")]], "amd64"))
