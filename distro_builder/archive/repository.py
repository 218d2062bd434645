"""Reading an apt repository: from its source line (a RepoSpec) to parsed, verified indexes.

`Repository.read()` does what apt does before it can resolve, in one place:

1. fetch `dists/SUITE/Release` (+ `Release.gpg`) or `InRelease`;
2. check the signature with gpgv when a keyring is given (archive/sign.py), else announce the
   source loudly as UNAUTHENTICATED;
3. take the signed text out of a clearsigned InRelease;
4. read the Release's checksums (SHA256, else SHA1, else MD5Sum for old archives);
5. fetch each component's index in the first compression the Release vouches for (xz, bz2, gz,
   plain); one that no checksum covers is never read;
6. check it against the Release (size and hash);
7. parse it into a Catalog through the parsed-index cache (archive/catalog.py), keyed by the
   SHA-256 just checked.

A flat repository (`URL ./`) has no Release: its `Packages*` are read unauthenticated, and a
local directory of .debs is scanned (trusted: the user gave them). Bytes come from
fetch.Fetcher (file system or http, the `--offline` copies); what they mean is decided here.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from distro_builder.archive import index, sign
from distro_builder.archive.catalog import Catalog, read_catalog, to_index_package
from distro_builder.archive.fetch import Fetcher, join_url, url_to_path
from distro_builder.errors import ArchiveError
from distro_builder.model import RepoSpec

log = logging.getLogger(__name__)

INDEX_NAMES = ("Packages.xz", "Packages.bz2", "Packages.gz", "Packages")


class Repository:
    """One repository read: its packages, whether its Release signature was checked, and the
    Release's fields (without the checksum lists)."""

    def __init__(self, spec: RepoSpec, fetcher: Fetcher) -> None:
        self.spec = spec
        self.fetcher = fetcher
        fetcher.add_mirrors(spec.url, spec.mirrors)
        self.packages = Catalog()
        self.authenticated = False
        self.release: tuple[tuple[str, str], ...] = ()
        self._base = join_url(spec.url, f"dists/{spec.suite}")
        self._where = f"{spec.url} {spec.suite}"
        self._release_name = f"{self._base}/Release"
        self._checksums: dict[str, tuple[str, str, int]] = {}

    @classmethod
    def read(cls, spec: RepoSpec, fetcher: Fetcher) -> Repository:
        """Read `spec`'s Release and indexes. Raises ArchiveError (and ToolError without gpgv)."""
        repo = cls(spec, fetcher)
        if spec.flat:
            repo._read_flat()
        else:
            repo._read_release()
            repo.packages = Catalog.join(repo._read_index(c) for c in spec.components)
        return repo

    # -- steps 1-4: the Release -------------------------------------------------------------------

    def _read_release(self) -> None:
        base, where = self._base, self._where
        release_raw = self.fetcher.read(f"{base}/Release", optional=True)
        if release_raw is None:
            self._release_name = f"{base}/InRelease"
            inrelease = self.fetcher.read(f"{base}/InRelease", optional=True)
            if inrelease is None:
                raise ArchiveError(
                    f"{where}: no dists/{self.spec.suite}/Release or InRelease",
                    hint="check the URL and the suite name",
                )
            if self.spec.keyring:
                release_raw, fpr = sign.verify_clearsigned(
                    inrelease, Path(self.spec.keyring), name=f"{base}/InRelease"
                )
                self.authenticated = True
                log.info("    %s: InRelease signed by %s", where, fpr)
            else:
                release_raw = _strip_clearsign(inrelease)
        elif self.spec.keyring:
            sig = self.fetcher.read(f"{base}/Release.gpg", optional=True)
            fpr = sign.verify_detached(
                release_raw, sig, Path(self.spec.keyring), name=f"{base}/Release"
            )
            self.authenticated = True
            log.info("    %s: Release signed by %s", where, fpr)
        if not self.authenticated:
            log.warning(
                "WARNING: %s is UNAUTHENTICATED: no keyring given, its Release signature is not "
                "checked (add signed-by=KEYRING)",
                where,
            )
        release = index.read_release(release_raw, self._release_name)
        self._checksums = index.release_checksums(release)
        self.release = tuple(
            (k, v)
            for k, v in release.items()
            if isinstance(v, str)  # not the hash lists
        )

    # -- steps 5-7: an index ----------------------------------------------------------------------

    def _read_index(self, component: str) -> Catalog:
        rel_dir = f"{component}/binary-{self.spec.arch}"
        for name in INDEX_NAMES:
            rel = f"{rel_dir}/{name}"
            expected = self._checksums.get(rel)
            if expected is None:
                continue  # only an index the Release vouches for is read
            url = f"{self._base}/{rel}"
            # apt's "Hit": a copy of an earlier download the Release still vouches for
            raw = self.fetcher.kept(url)
            digest = _matching_digest(raw, expected) if raw is not None else None
            if digest is None:
                raw = self.fetcher.read(url, optional=True)
                if raw is None:
                    continue
                digest = self._check_index(raw, rel, expected)
            else:
                log.debug("%s: the copy kept matches the Release, not downloaded", url)
            return read_catalog(
                raw,
                f"{self._base}/{rel}",
                origin=f"{self.spec.suite}/{component}",
                repo=self.spec.url,
                flat=False,
                cache_dir=self.fetcher.cache_dir,
                sha256=digest if expected[0] == "sha256" else None,
            )
        self._refuse_uncovered_index(rel_dir)
        raise ArchiveError(
            f"{self._where}: no Packages index for {rel_dir}",
            hint=f"is {component} a component of {self.spec.suite} for {self.spec.arch}?",
        )

    def _check_index(self, data: bytes, rel: str, expected: tuple[str, str, int]) -> str:
        """The hex digest of `data` if it matches the Release's entry, else ArchiveError."""
        digest = _matching_digest(data, expected)
        if digest is None:
            raise ArchiveError(
                f"{self._where}: {rel} does not match the Release's {expected[0].upper()} (corrupt "
                "or tampered)",
                hint="the index and the Release disagree; the mirror is broken or hostile",
            )
        return digest

    def _refuse_uncovered_index(self, rel_dir: str) -> None:
        """Raise when an index is there but no checksum of the Release covers it (never read it)."""
        for name in INDEX_NAMES:
            if self.fetcher.read(f"{self._base}/{rel_dir}/{name}", optional=True) is None:
                continue
            why = (
                "it has no MD5Sum, SHA1 or SHA256 field"
                if not self._checksums
                else "it does not list it"
            )
            raise ArchiveError(
                f"{self._where}: no checksum in {self._release_name} covers {rel_dir}/{name} "
                f"({why}); an index nothing vouches for could be tampered with, so it is not read",
                hint="the Release must list every index with its SHA256 (apt-ftparchive release "
                "DIR > Release); if it does upstream, the mirror is broken or hostile",
            )

    # -- a flat repository ------------------------------------------------------------------------

    def _read_flat(self) -> None:
        """`URL/Packages*`, or a local directory of .debs (scanned)."""
        spec, fetcher = self.spec, self.fetcher
        base = spec.url if not spec.suite else join_url(spec.url, spec.suite.rstrip("/"))
        for name in INDEX_NAMES:
            raw = fetcher.read(f"{base}/{name}", optional=True)
            if raw is not None:
                self.packages = read_catalog(
                    raw, f"{base}/{name}", origin=base, repo=base, flat=True,
                    cache_dir=fetcher.cache_dir,
                )  # fmt: skip
                log.warning("WARNING: flat repository %s is UNAUTHENTICATED (no Release)", base)
                return
        if "://" in base and not base.startswith("file://"):
            raise ArchiveError(
                f"{base}: no Packages index", hint="a flat repository needs Packages"
            )
        folder = url_to_path(base)
        if not folder.is_dir():
            raise ArchiveError(f"{folder}: not a directory of .debs", hint="check the path")
        debs = sorted(p for p in folder.rglob("*.deb") if p.is_file())
        if not debs:
            raise ArchiveError(f"{folder}: no .deb files", hint="put the packages there")
        pkgs = []
        for p in debs:
            rel = p.relative_to(folder).as_posix()
            stanza = index.packages_stanza(p.read_bytes(), rel)
            pkgs.append(to_index_package(stanza, origin=str(folder), repo=str(folder), flat=True))
        log.info("    %s: %d local .debs (trusted: you gave them)", folder, len(pkgs))
        self.packages = Catalog.of(pkgs)
        self.authenticated = True


def _matching_digest(data: bytes, expected: tuple[str, str, int]) -> str | None:
    """The hex digest of `data` when its size and digest are the Release's `expected`
    (algorithm, hex digest, size), else None."""
    algorithm, hexdigest, size = expected
    if len(data) != size:
        return None
    digest = hashlib.new(algorithm, data).hexdigest()
    return digest if digest == hexdigest.lower() else None


def _strip_clearsign(data: bytes) -> bytes:
    text = data.decode("utf-8", errors="replace")
    if "-----BEGIN PGP SIGNED MESSAGE-----" not in text:
        return data
    body = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----", 1)[0]
    return "\n".join(ln[2:] if ln.startswith("- ") else ln for ln in body.splitlines()).encode()
