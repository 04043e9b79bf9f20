"""Locating crates: real crates written here, real `cargo metadata`, real archives and git repositories."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.offline_cargo import OfflineCargo
from wasiport.port import sources as loc
from wasiport.errors import UserError
from wasiport.port.sources import ArchiveLimits, Origin, Target

REPO = Path(__file__).resolve().parent.parent
TESTER = ("-c", "user.name=Test Author", "-c", "user.email=author@example.test")
# Copy tests do not need cargo: with no cargo to run, targets come from Cargo.toml.
WITHOUT_CARGO = {"CARGO": "/nonexistent/cargo", "PATH": os.environ.get("PATH", "")}


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git configuration, like a fresh CI machine."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *TESTER, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write_files(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def manifest(name: str, version: str, edition: str = "2021", extra: str = "") -> str:
    return f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "{edition}"\n{extra}'


def commit_all(root: Path, message: str = "initial") -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def status(root: Path) -> str:
    return git(root, "status", "--porcelain=v1", "--untracked-files=all")


# --------------------------------------------------------------------------------------
# a crate given by path


NETCLIENT = {
    "Cargo.toml": manifest(
        "netclient",
        "0.4.0",
        extra='\n[lib]\nname = "netclient_core"\n\n[[bin]]\nname = "extra"\npath = "tools/extra.rs"\n',
    ),
    "src/lib.rs": "pub fn connect() {}\n",
    "src/main.rs": "fn main() {}\n",
    "src/bin/probe.rs": "fn main() {}\n",
    "src/bin/multi/main.rs": "fn main() {}\n",
    "tools/extra.rs": "fn main() {}\n",
    "examples/demo.rs": "fn main() {}\n",
    "tests/it.rs": "#[test] fn t() {}\n",
    "build.rs": "fn main() {}\n",
}


def test_a_path_is_ported_in_place_and_its_targets_come_from_cargo(
    offline_cargo: OfflineCargo, tmp_path: Path
) -> None:
    root = write_files(tmp_path / "netclient", NETCLIENT)
    commit_all(root)

    crate = loc.locate(str(root), env=offline_cargo.env())

    assert (crate.name, crate.version, crate.edition) == ("netclient", "0.4.0", "2021")
    assert crate.origin is Origin.PATH and not crate.is_copy
    assert crate.root == root.resolve() and crate.repo_root == root.resolve()
    assert crate.manifest_path == root.resolve() / "Cargo.toml"
    assert crate.lib_name == "netclient_core"
    assert crate.lib_path == root / "src/lib.rs"
    assert set(crate.bin_paths) == {
        root / "src/main.rs",
        root / "src/bin/probe.rs",
        root / "src/bin/multi/main.rs",
        root / "tools/extra.rs",
    }
    kinds = {(t.kind, t.name) for t in crate.targets}
    assert {("example", "demo"), ("test", "it"), ("build", "build-script-build")} <= kinds
    assert crate.upstream_commit is None and crate.consumer_manifest is None

    # The offline fallback reads the same targets from Cargo.toml and cargo's conventions.
    assert loc.discover_targets(root / "Cargo.toml") == crate.targets
    assert loc.locate(str(root / "Cargo.toml"), env=WITHOUT_CARGO) == crate


def test_a_workspace_root_is_refused_with_its_members(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n',
            "crates/alpha/Cargo.toml": manifest("alpha", "0.1.0"),
            "crates/alpha/src/lib.rs": "",
            "crates/beta/Cargo.toml": manifest("beta", "0.1.0"),
            "crates/beta/src/lib.rs": "",
        },
    )
    with pytest.raises(UserError, match="is a workspace") as refused:
        loc.locate(str(root), env=WITHOUT_CARGO)
    assert "alpha (crates/alpha/)" in str(refused.value)
    assert "beta (crates/beta/)" in str(refused.value)


def test_inherited_version_and_edition_are_read_from_the_workspace(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "ws",
        {
            "Cargo.toml": '[workspace]\nmembers = ["member"]\n\n'
            '[workspace.package]\nversion = "3.1.4"\nedition = "2018"\n',
            "member/Cargo.toml": '[package]\nname = "member"\nversion.workspace = true\nedition.workspace = true\n',
            "member/src/lib.rs": "",
        },
    )
    crate = loc.locate(str(root / "member"), env=WITHOUT_CARGO)
    assert (crate.version, crate.edition, crate.lib_name) == ("3.1.4", "2018", "member")


def test_bad_paths_and_manifests_are_reported_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file or directory"):
        loc.locate(str(tmp_path / "missing"), env=WITHOUT_CARGO)

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no Cargo.toml"):
        loc.locate(str(tmp_path / "empty"), env=WITHOUT_CARGO)

    (tmp_path / "README.md").write_text("hello\n")
    with pytest.raises(UserError, match="not a crate"):
        loc.locate(str(tmp_path / "README.md"), env=WITHOUT_CARGO)

    broken = write_files(tmp_path / "broken", {"Cargo.toml": '[package]\nname = "broken"\nversion = 0.1.0"\n'})
    with pytest.raises(UserError) as malformed:
        loc.locate(str(broken), env=WITHOUT_CARGO)
    assert f"{broken / 'Cargo.toml'}:3:" in str(malformed.value)
    assert "invalid TOML" in str(malformed.value)

    nameless = write_files(tmp_path / "nameless", {"Cargo.toml": "[dependencies]\n"})
    with pytest.raises(UserError, match=r"has no \[package\] table"):
        loc.locate(str(nameless), env=WITHOUT_CARGO)


# --------------------------------------------------------------------------------------
# a dependency of a consumer crate


@pytest.fixture
def consumer(tmp_path: Path) -> Path:
    """A consumer of Debian's ureq 2.6.2 and of path crates: two versions of `helper`, and `redis`."""
    write_files(tmp_path / "helper", {"Cargo.toml": manifest("helper", "0.1.0"), "src/lib.rs": ""})
    write_files(tmp_path / "helper2", {"Cargo.toml": manifest("helper", "0.2.0"), "src/lib.rs": ""})
    write_files(
        tmp_path / "redis",
        {"Cargo.toml": manifest("redis", "0.22.1"), "src/lib.rs": "pub fn open() {}\n"},
    )
    root = write_files(
        tmp_path / "app",
        {
            "Cargo.toml": manifest(
                "app",
                "0.1.0",
                extra="\n[dependencies]\n"
                'ureq = { version = "2.6.2", default-features = false }\n'
                'helper = { path = "../helper" }\n'
                'helper_next = { package = "helper", path = "../helper2" }\n'
                'redis = { path = "../redis" }\n',
            ),
            "src/main.rs": "fn main() {}\n",
        },
    )
    return root / "Cargo.toml"


def test_a_registry_dependency_is_copied_into_a_git_repo_once_and_then_reused(
    offline_cargo: OfflineCargo, consumer: Path
) -> None:
    env = offline_cargo.env()
    crate = loc.locate("ureq", manifest_path=consumer, env=env)

    copy = consumer.parent / "wasiport" / "ureq-2.6.2"
    original = (offline_cargo.registry / "ureq-2.6.2").resolve()
    assert crate.root == copy.resolve()
    assert (crate.name, crate.version, crate.edition) == ("ureq", "2.6.2", "2018")
    assert crate.origin is Origin.DEPENDENCY and crate.is_copy and not crate.reused
    assert crate.consumer_manifest == consumer.resolve()
    assert crate.repo_root == copy.resolve()
    assert crate.lib_name == "ureq" and crate.lib_path == copy.resolve() / "src/lib.rs"
    assert (copy / "src/stream.rs").read_bytes() == (original / "src/stream.rs").read_bytes()
    assert not (copy / ".cargo-checksum.json").exists()
    assert git(copy, "log", "--format=%s|%an <%ae>") == "upstream: ureq 2.6.2|wasiport <wasiport@localhost>"
    assert git(copy, "rev-parse", "HEAD") == crate.upstream_commit
    assert status(copy) == ""
    # Build output never makes the copy dirty for the clean-tree gate.
    (copy / "target/debug").mkdir(parents=True)
    (copy / "target/debug/out.rlib").write_bytes(b"\0")
    (copy / "Cargo.lock").write_text("# generated\n")
    assert status(copy) == ""

    # Found again from the consumer's directory (no --manifest-path): the copy is reused.
    again = loc.locate("ureq@2.6.2", cwd=consumer.parent, env=env)
    assert again.reused and again.upstream_commit == crate.upstream_commit and again.root == crate.root

    # Once the consumer builds against the copy, the copy is the user's source, in place.
    with open(consumer, "a") as handle:
        handle.write('\n[patch.crates-io]\nureq = { path = "wasiport/ureq-2.6.2" }\n')
    patched = loc.locate("ureq", manifest_path=consumer, env=env)
    assert patched.origin is Origin.PATH and patched.root == crate.root
    assert patched.upstream_commit == crate.upstream_commit


def test_path_dependencies_renames_and_several_versions(offline_cargo: OfflineCargo, consumer: Path) -> None:
    env = offline_cargo.env()
    helpers = consumer.parent.parent

    with pytest.raises(UserError, match="several versions of helper") as ambiguous:
        loc.locate("helper", manifest_path=consumer, env=env)
    assert "helper@0.1.0, helper@0.2.0" in str(ambiguous.value)
    assert "wasiport apply helper@" in str(ambiguous.value)

    second = loc.locate("helper@0.2.0", manifest_path=consumer, env=env)
    assert second.root == (helpers / "helper2").resolve()
    assert second.origin is Origin.PATH and second.consumer_manifest == consumer.resolve()

    renamed = loc.locate("helper_next", manifest_path=consumer, env=env)
    assert (renamed.name, renamed.version, renamed.root) == ("helper", "0.2.0", second.root)

    with pytest.raises(UserError, match="not a dependency") as missing:
        loc.locate("hyper", manifest_path=consumer, env=env)
    assert "ureq" in str(missing.value)


def test_a_recipe_name_resolves_to_the_consumers_crate(offline_cargo: OfflineCargo, consumer: Path) -> None:
    recipes = loc.load_recipes(REPO / "rules")

    crate = loc.locate("redis-rs", manifest_path=consumer, recipes=recipes, env=offline_cargo.env())

    assert (crate.name, crate.version) == ("redis", "0.22.1")
    assert crate.root == (consumer.parent.parent / "redis").resolve()
    assert crate.recipe is recipes["redis-rs"]
    assert crate.recipe.default_features is False
    # The crate's own name brings the recipe too.
    assert loc.locate("redis", manifest_path=consumer, recipes=recipes, env=offline_cargo.env()).recipe is (
        recipes["redis-rs"]
    )


def test_a_name_without_a_consumer_explains_what_to_pass(tmp_path: Path) -> None:
    recipes = loc.load_recipes(REPO / "rules")
    with pytest.raises(UserError, match="no Cargo.toml here") as refused:
        loc.locate("redis-rs", cwd=tmp_path, recipes=recipes, env=WITHOUT_CARGO)
    assert "--manifest-path" in str(refused.value)
    assert "https://github.com/redis-rs/redis-rs" in str(refused.value)


# --------------------------------------------------------------------------------------
# a registry directory entry


def registry_entry(parent: Path, name: str = "tinynet", version: str = "0.3.1") -> Path:
    entry = write_files(
        parent / f"{name}-{version}",
        {
            "Cargo.toml": manifest(name, version),
            "Cargo.toml.orig": manifest(name, version),
            "src/lib.rs": "pub fn dial() {}\n",
            ".cargo-checksum.json": '{"package": "0", "files": {}}',
            ".cargo_vcs_info.json": '{"git": {"sha1": "0"}}',
            ".gitignore": "/Cargo.lock\n*.orig\n",
        },
    )
    for path in sorted(entry.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    entry.chmod(0o555)
    return entry


def test_a_registry_entry_is_copied_not_edited(tmp_path: Path) -> None:
    entry = registry_entry(tmp_path / "registry")
    before = {p: p.read_bytes() for p in entry.rglob("*") if p.is_file()}

    crate = loc.locate(str(entry), into=tmp_path / "ports", env=WITHOUT_CARGO)

    copy = tmp_path / "ports" / "tinynet-0.3.1"
    assert crate.root == copy.resolve() and crate.origin is Origin.REGISTRY
    assert crate.lib_name == "tinynet"
    assert not (copy / ".cargo-checksum.json").exists() and not (copy / ".cargo_vcs_info.json").exists()
    assert git(copy, "ls-files").splitlines() == [".gitignore", "Cargo.toml", "Cargo.toml.orig", "src/lib.rs"]
    assert os.access(copy / "src/lib.rs", os.W_OK)
    assert {p: p.read_bytes() for p in entry.rglob("*") if p.is_file()} == before

    # Default place: ./wasiport/<name>-<version>
    default = loc.locate(str(entry), cwd=tmp_path / "elsewhere", env=WITHOUT_CARGO)
    assert default.root == (tmp_path / "elsewhere" / "wasiport" / "tinynet-0.3.1").resolve()

    squatter = tmp_path / "taken" / "tinynet-0.3.1"
    squatter.mkdir(parents=True)
    with pytest.raises(UserError, match="not wasiport's copy of tinynet 0.3.1"):
        loc.locate(str(entry), into=tmp_path / "taken", env=WITHOUT_CARGO)


# --------------------------------------------------------------------------------------
# .crate archives


def tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **extra: str):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def build_archive(path: Path, members: list) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, data)
    return path


def good_members(top: str = "wirecat-1.2.0") -> list:
    return [
        tar_member(f"{top}/Cargo.toml", manifest("wirecat", "1.2.0").encode()),
        tar_member(f"{top}/src/lib.rs", b"pub fn cat() {}\n"),
        tar_member(f"{top}/scripts/gen.sh", b"#!/bin/sh\n", mode=0o4755),
        tar_member(f"{top}/.cargo_vcs_info.json", b"{}"),
    ]


def test_a_crate_archive_is_unpacked_into_a_git_copy(tmp_path: Path) -> None:
    archive = build_archive(tmp_path / "wirecat-1.2.0.crate", good_members())

    crate = loc.locate(str(archive), into=tmp_path / "ports", env=WITHOUT_CARGO)

    copy = (tmp_path / "ports" / "wirecat-1.2.0").resolve()
    assert crate.root == copy and crate.origin is Origin.ARCHIVE
    assert (copy / "src/lib.rs").read_text() == "pub fn cat() {}\n"
    assert stat.S_IMODE((copy / "scripts/gen.sh").stat().st_mode) == 0o755  # no setuid from an archive
    assert git(copy, "log", "--format=%s") == "upstream: wirecat 1.2.0"
    assert status(copy) == ""
    assert loc.locate(str(archive), into=tmp_path / "ports", env=WITHOUT_CARGO).reused


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (tar_member("wirecat-1.2.0/../../escape.rs", b"evil"), "escapes the archive"),
        (tar_member("/tmp/absolute-escape.rs", b"evil"), "absolute path"),
        (tar_member("wirecat-1.2.0/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "is a link"),
        (tar_member("wirecat-1.2.0/hard", kind=tarfile.LNKTYPE, linkname="wirecat-1.2.0/src/lib.rs"), "is a link"),
        (tar_member("wirecat-1.2.0/fifo", kind=tarfile.FIFOTYPE), "special file"),
        (tar_member("wirecat-1.2.0/tty", kind=tarfile.CHRTYPE), "special file"),
        (tar_member("other-0.1.0/Cargo.toml", b""), "holds 2"),
    ],
)
def test_malicious_archives_are_refused_before_anything_is_written(
    tmp_path: Path, extra: tuple, message: str
) -> None:
    archive = build_archive(tmp_path / "evil.crate", [*good_members(), extra])
    ports = tmp_path / "deep" / "ports"

    with pytest.raises(UserError, match=message):
        loc.locate(str(archive), into=ports, env=WITHOUT_CARGO)

    assert not ports.exists() or list(ports.iterdir()) == []
    assert not (tmp_path / "escape.rs").exists() and not Path("/tmp/absolute-escape.rs").exists()


def test_archive_size_and_count_caps(tmp_path: Path) -> None:
    archive = build_archive(tmp_path / "wirecat-1.2.0.crate", good_members())
    with pytest.raises(UserError, match="more than 3 entries"):
        loc.locate(str(archive), into=tmp_path / "a", env=WITHOUT_CARGO, archive_limits=ArchiveLimits(max_members=3))
    with pytest.raises(UserError, match="more than 20 bytes"):
        loc.locate(
            str(archive), into=tmp_path / "b", env=WITHOUT_CARGO, archive_limits=ArchiveLimits(max_total_bytes=20)
        )
    (tmp_path / "plain.crate").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="not a gzip-compressed tar"):
        loc.locate(str(tmp_path / "plain.crate"), into=tmp_path / "c", env=WITHOUT_CARGO)


# --------------------------------------------------------------------------------------
# --git


@pytest.fixture
def redis_remote(tmp_path: Path) -> str:
    """A bare repository shaped like redis-rs: a workspace with `redis/`, tag redis-0.22.1, then 0.23.0."""
    work = write_files(
        tmp_path / "redis-rs-work",
        {
            "Cargo.toml": '[workspace]\nmembers = ["redis", "redis-test"]\n',
            "redis/Cargo.toml": manifest("redis", "0.22.1"),
            "redis/src/lib.rs": "pub fn connect() {}\n",
            "redis-test/Cargo.toml": manifest("redis-test", "0.1.0"),
            "redis-test/src/lib.rs": "",
        },
    )
    commit_all(work, "release 0.22.1")
    git(work, "tag", "redis-0.22.1")
    (work / "redis/Cargo.toml").write_text(manifest("redis", "0.23.0"))
    commit_all(work, "release 0.23.0")
    bare = tmp_path / "remote" / "redis-rs.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare.as_uri()


def test_git_clone_through_the_recipe_tag_and_subdirectory(redis_remote: str, tmp_path: Path) -> None:
    recipes = loc.load_recipes(REPO / "rules")
    ports = tmp_path / "ports"

    crate = loc.locate("redis-rs@0.22.1", git_url=redis_remote, into=ports, recipes=recipes, env=WITHOUT_CARGO)

    clone = (ports / "redis-0.22.1").resolve()
    assert (crate.name, crate.version, crate.origin) == ("redis", "0.22.1", Origin.GIT)
    assert crate.root == clone / "redis" and crate.repo_root == clone
    assert crate.source == f"{redis_remote} at redis-0.22.1"
    assert git(clone, "describe", "--tags") == "redis-0.22.1"
    assert status(clone) == ""
    assert not [p for p in ports.iterdir() if p.name.startswith(".")]  # no leftovers of the clone

    latest = loc.locate("redis", git_url=redis_remote, into=ports, env=WITHOUT_CARGO)
    assert latest.version == "0.23.0" and latest.root == (ports / "redis-0.23.0" / "redis").resolve()
    assert loc.locate("redis-rs@0.22.1", git_url=redis_remote, into=ports, recipes=recipes, env=WITHOUT_CARGO).reused

    with pytest.raises(UserError, match="is a workspace") as workspace:
        loc.locate("", git_url=redis_remote, into=tmp_path / "other", env=WITHOUT_CARGO)
    assert "redis (redis)" in str(workspace.value) and "redis-test (redis-test)" in str(workspace.value)

    with pytest.raises(UserError, match="has no revision `v9.9.9`"):
        loc.locate("redis", git_url=redis_remote, rev="v9.9.9", into=tmp_path / "other", env=WITHOUT_CARGO)


def test_git_without_network_says_so_and_what_to_pass_instead(tmp_path: Path) -> None:
    with pytest.raises(UserError) as refused:
        loc.locate(
            "redis", git_url="https://127.0.0.1:1/redis-rs/redis-rs.git", into=tmp_path / "ports", env=WITHOUT_CARGO
        )
    text = str(refused.value)
    assert "no network access" in text and ".crate archive" in text and "local path" in text
    assert not (tmp_path / "ports").exists()


# --------------------------------------------------------------------------------------
# recipes


def test_the_redis_rs_recipe_loads() -> None:
    recipes = loc.load_recipes(REPO / "rules")
    redis = recipes["redis-rs"]
    assert redis.crate == "redis"
    assert redis.repository == "https://github.com/redis-rs/redis-rs"
    assert redis.tag_for("0.22.1") == "redis-0.22.1"
    assert redis.subdirectory == "redis"
    assert (redis.default_features, redis.features) == (False, ("acl", "streams", "geospatial"))
    assert redis.notes and all(isinstance(note, str) for note in redis.notes)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('crate = "x"\nfeature = ["a"]\n', "unknown key `feature` (did you mean `features`?)"),
        ('crate = "x"\nfeatures = "acl"\n', "key `features` must be a list"),
        ('features = ["acl"]\n', "key `crate` is required"),
        ('crate = "x"\ntag-format = "x-{ver}"\n', "key `tag-format` may only use"),
        ('crate = "x"\nsubdirectory = "../up"\n', "key `subdirectory` must be a relative path"),
        ('crate = "x"\ndefault-features = "no"\n', "key `default-features` must be a bool"),
        ('crate = "x"\nnotes = [\n', "recipe.toml:3:1: invalid TOML"),
        ('crate = x\n', "recipe.toml:1:9: invalid TOML"),
    ],
)
def test_invalid_recipes_name_the_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    recipe = write_files(tmp_path / "rules", {"wasmedge/recipes/recipe.toml": body}) / "wasmedge/recipes/recipe.toml"
    with pytest.raises(UserError) as refused:
        loc.load_recipes(tmp_path / "rules")
    assert str(recipe) in str(refused.value)
    assert message in str(refused.value)


def test_a_name_claimed_by_two_recipes_is_refused(tmp_path: Path) -> None:
    write_files(
        tmp_path / "rules" / "wasmedge" / "recipes",
        {"a.toml": 'crate = "a"\naliases = ["shared"]\n', "b.toml": 'crate = "b"\naliases = ["shared"]\n'},
    )
    with pytest.raises(UserError, match="recipe name `shared` is already used by .*a.toml"):
        loc.load_recipes(tmp_path / "rules")
    assert loc.load_recipes(tmp_path / "no-rules") == {}


def test_targets_fallback_honours_explicit_tables_and_autodiscovery_switches(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "tool",
        {
            "Cargo.toml": manifest("my-tool", "1.0.0", extra="autoexamples = false\nbuild = false\n"),
            "src/lib.rs": "",
            "src/main.rs": "",
            "examples/skipped.rs": "",
            "build.rs": "",
        },
    )
    assert loc.discover_targets(root / "Cargo.toml") == (
        Target("my_tool", "lib", root / "src/lib.rs"),
        Target("my-tool", "bin", root / "src/main.rs"),
    )
