//! What ships beside the code: the Makefile's targets (run with `make` in a temporary
//! copy, with `CARGO=true` so that nothing is built), the example users file and the
//! systemd unit. (The Wireshark dissector, which `make install` also ships, has its own
//! test: tests/dissector.rs.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What the READMEs link to, which `make install` puts beside them.
const LINKED_DOCS: [&str; 7] = [
    "BENCHMARKS.md",
    "docs/PROTOCOL.md",
    "docs/PROTOCOL.zh-CN.md",
    "docs/TOUR.md",
    "docs/TOUR.zh-CN.md",
    "docs/TESTING.md",
    "examples/minimal.rs",
];

/// A temporary copy of what the Makefile's targets touch, with stand-in binaries.
fn copy_of_the_project() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for file in [
        "Makefile",
        "README.md",
        "README.zh-CN.md",
        "contrib/users.txt",
        "contrib/chat-server.service",
        "contrib/chatroom.lua",
    ]
    .into_iter()
    .chain(LINKED_DOCS)
    {
        let to = copy.path().join(file);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(Path::new(ROOT).join(file), to).unwrap();
    }
    let release = copy.path().join("target/release");
    fs::create_dir_all(&release).unwrap();
    for binary in ["chat-server", "chat-client"] {
        fs::write(release.join(binary), "#!/bin/sh\n").unwrap();
    }
    copy
}

fn make(dir: &Path, args: &[&str]) {
    let output = Command::new("make")
        .arg("-C")
        .arg(dir)
        .arg("CARGO=true")
        .args(args)
        .output()
        .expect("run make");
    assert!(
        output.status.success(),
        "make {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn make_clean_never_deletes_the_data_directory() {
    let copy = copy_of_the_project();
    let mailbox = copy.path().join("data/31303031.mbox");
    fs::create_dir_all(mailbox.parent().unwrap()).unwrap();
    fs::write(&mailbox, [0; 140]).unwrap();
    make(copy.path(), &["clean"]);
    assert!(mailbox.exists(), "make clean deleted a queued message");
}

#[test]
fn make_install_puts_the_binaries_and_their_documents_under_prefix() {
    let copy = copy_of_the_project();
    let prefix = copy.path().join("prefix");
    make(
        copy.path(),
        &["install", &format!("PREFIX={}", prefix.display())],
    );
    let mode = |path: &str| {
        let metadata = fs::metadata(prefix.join(path))
            .unwrap_or_else(|error| panic!("{path} is not installed: {error}"));
        metadata.permissions().mode() & 0o777
    };
    assert_eq!(mode("bin/chat-server"), 0o755);
    assert_eq!(mode("bin/chat-client"), 0o755);
    assert_eq!(mode("share/doc/chat-server/users.example.txt"), 0o644);
    assert_eq!(mode("share/doc/chat-server/chat-server.service"), 0o644);
    assert_eq!(mode("share/doc/chat-server/chatroom.lua"), 0o644);
    assert_eq!(mode("share/doc/chat-server/README.md"), 0o644);
    assert_eq!(mode("share/doc/chat-server/README.zh-CN.md"), 0o644);
    for doc in LINKED_DOCS {
        assert_eq!(
            mode(&format!("share/doc/chat-server/{doc}")),
            0o644,
            "{doc}"
        );
    }
}

/// The relative links of a Markdown document (`](path)` or `](path#anchor)`), without
/// their anchors: web addresses and links within the document are not files.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')'))
        .map(|(target, _)| target.split('#').next().unwrap_or("").to_string())
        .filter(|target| !target.is_empty() && !target.contains("://"))
        .collect()
}

#[test]
fn every_file_the_readmes_link_to_is_installed_beside_them() {
    for readme in ["README.md", "README.zh-CN.md"] {
        let text = fs::read_to_string(Path::new(ROOT).join(readme)).unwrap();
        let links = relative_links(&text);
        assert!(!links.is_empty(), "{readme} links to no file?");
        for link in links {
            assert!(
                link.starts_with("README") || LINKED_DOCS.contains(&link.as_str()),
                "{readme} links to {link}, which `make install` does not install \
                 (add it to LINKED_DOCS in the Makefile and here)"
            );
        }
    }
}

/// `make client` with a stand-in client that prints its arguments, and `path` as PATH
/// (with or without a stand-in `rlwrap`): what ran, and what it said on stderr.
fn make_client(copy: &Path, path: &str) -> (String, String) {
    let output = Command::new("make")
        .arg("-C")
        .arg(copy)
        .args(["--no-print-directory", "CARGO=true", "client", "NAME=似末"])
        .env("PATH", path)
        .output()
        .expect("run make");
    assert!(output.status.success(), "{output:?}");
    // The build step's command (`true build …`, with CARGO=true) is echoed first.
    let stdout = String::from_utf8_lossy(&output.stdout);
    (
        stdout
            .lines()
            .filter(|line| !line.starts_with("true "))
            .map(|line| format!("{line}\n"))
            .collect(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn make_client_runs_the_client_under_rlwrap_when_it_is_installed_and_says_so_when_not() {
    let copy = copy_of_the_project();
    let client = copy.path().join("target/release/chat-client");
    fs::write(&client, "#!/bin/sh\necho chat-client \"$@\"\n").unwrap();
    fs::set_permissions(&client, fs::Permissions::from_mode(0o755)).unwrap();
    let tools = copy.path().join("tools");
    fs::create_dir_all(&tools).unwrap();
    let system = std::env::var("PATH").unwrap();
    // Without rlwrap: the client itself, and a word on what is missing.
    let bare = tools.join("bare");
    fs::create_dir_all(&bare).unwrap();
    for tool in ["sh", "make", "true"] {
        let found = std::env::split_paths(&system)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
            .unwrap_or_else(|| panic!("{tool} is not on PATH"));
        std::os::unix::fs::symlink(found, bare.join(tool)).unwrap();
    }
    let (stdout, stderr) = make_client(copy.path(), bare.to_str().unwrap());
    assert_eq!(stdout, "chat-client --addr 127.0.0.1:12345 似末\n");
    assert!(stderr.contains("rlwrap is not installed"), "{stderr}");
    // With rlwrap: the client under it.
    let with = tools.join("with");
    fs::create_dir_all(&with).unwrap();
    let rlwrap = with.join("rlwrap");
    fs::write(&rlwrap, "#!/bin/sh\necho rlwrap\nexec \"$@\"\n").unwrap();
    fs::set_permissions(&rlwrap, fs::Permissions::from_mode(0o755)).unwrap();
    let (stdout, stderr) = make_client(copy.path(), &format!("{}:{system}", with.display()));
    assert_eq!(stdout, "rlwrap\nchat-client --addr 127.0.0.1:12345 似末\n");
    assert!(!stderr.contains("rlwrap"), "{stderr}");
}

#[test]
fn the_example_users_file_is_a_valid_users_file() {
    let path = Path::new(ROOT).join("contrib/users.txt");
    let users = chatroom::users::Accounts::load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert!(
        users.contains("alice smith"),
        "it shows a name with a space"
    );
    assert!(users.len() >= 2);
}

/// The unit in contrib/, for the default PREFIX.
const DEFAULT_EXEC_START: &str = "ExecStart=/usr/local/bin/chat-server ";
/// Where `make install` puts the unit, under PREFIX.
const INSTALLED_UNIT: &str = "share/doc/chat-server/chat-server.service";

/// Asserts that `systemd-analyze verify` accepts the unit at `path` (which checks, among
/// the rest, that ExecStart is an executable file); skipped where systemd is not
/// installed.
fn assert_systemd_verifies(path: &Path) {
    let Ok(output) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(path)
        .output()
    else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The unit as `make install PREFIX=... DESTDIR=...` installs it, asserting that it is
/// contrib's with only ExecStart changed, to `PREFIX/bin/chat-server`.
fn installed_unit(copy: &Path, prefix: &str, destdir: &str) -> (std::path::PathBuf, String) {
    let mut args = vec!["install".to_string(), format!("PREFIX={prefix}")];
    if !destdir.is_empty() {
        args.push(format!("DESTDIR={destdir}"));
    }
    make(copy, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let path = Path::new(&format!("{destdir}{prefix}")).join(INSTALLED_UNIT);
    let unit = fs::read_to_string(&path).unwrap();
    let shipped = fs::read_to_string(Path::new(ROOT).join("contrib/chat-server.service")).unwrap();
    let exec_start = format!("ExecStart={prefix}/bin/chat-server ");
    assert_eq!(unit.lines().count(), shipped.lines().count());
    for (installed, original) in unit.lines().zip(shipped.lines()) {
        match original.strip_prefix(DEFAULT_EXEC_START) {
            Some(flags) => assert_eq!(installed, format!("{exec_start}{flags}")),
            None => assert_eq!(installed, original, "only ExecStart is changed"),
        }
    }
    (path, unit)
}

/// The unit in contrib/, with ExecStart pointing at the built server.
#[test]
fn the_systemd_unit_verifies() {
    let unit = fs::read_to_string(Path::new(ROOT).join("contrib/chat-server.service")).unwrap();
    assert!(unit.contains(DEFAULT_EXEC_START));
    let unit = unit.replace(
        DEFAULT_EXEC_START,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_chat-server")),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat-server.service");
    fs::write(&path, unit).unwrap();
    assert_systemd_verifies(&path);
}

/// The README's `make install PREFIX=$HOME/.local`: the unit it installs runs the
/// server it installs, and verifies.
#[test]
fn make_install_under_another_prefix_installs_a_unit_that_runs_its_server_and_verifies() {
    let copy = copy_of_the_project();
    let prefix = copy.path().join("home/user/.local");
    let (path, _) = installed_unit(copy.path(), prefix.to_str().unwrap(), "");
    assert_systemd_verifies(&path);
}

/// A package build stages files under DESTDIR, but the unit must name where the server
/// will be once the package is installed: PREFIX alone.
#[test]
fn make_install_with_destdir_names_prefix_not_the_staging_directory_in_the_unit() {
    let copy = copy_of_the_project();
    let stage = copy.path().join("stage");
    let (_, unit) = installed_unit(copy.path(), "/opt/chat", stage.to_str().unwrap());
    assert!(unit.contains("\nExecStart=/opt/chat/bin/chat-server --port "));
    assert!(stage.join("opt/chat/bin/chat-server").exists());
}

/// Every test the tour (and its Chinese version) names in its tables exists: a renamed
/// or deleted test must not leave the reader looking for it.
#[test]
fn every_test_the_tour_names_exists() {
    let mut functions = String::new();
    for dir in ["src", "tests"] {
        collect_sources(&Path::new(ROOT).join(dir), &mut functions);
    }
    for tour in ["docs/TOUR.md", "docs/TOUR.zh-CN.md"] {
        let text = fs::read_to_string(Path::new(ROOT).join(tour)).unwrap();
        let named: Vec<&str> = text
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| {
                word.len() > 24
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
            .collect();
        assert!(named.len() > 20, "{tour} names its tests");
        for name in named {
            assert!(
                functions.contains(&format!("fn {name}("))
                    || functions.contains(&format!("    {name},")),
                "{tour} names `{name}`, which is not a test"
            );
        }
    }
}

/// Every original name the tour (and its Chinese version) says is in a file is there:
/// the rows of its table "Where the original's names are", whose second column is
/// nothing but files (`src/server.rs`), each name of the first column in each file.
#[test]
fn every_original_name_the_tour_places_in_a_file_is_there() {
    for tour in ["docs/TOUR.md", "docs/TOUR.zh-CN.md"] {
        let text = fs::read_to_string(Path::new(ROOT).join(tour)).unwrap();
        let mut rows = 0;
        for line in text.lines() {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let [names, files] = cells[..] else { continue };
            let files: Vec<&str> = files.split(['、', ',']).map(str::trim).collect();
            let Some(files) = files
                .iter()
                .map(|file| {
                    file.strip_prefix('`')
                        .and_then(|file| file.strip_suffix('`'))
                        .filter(|file| file.starts_with("src/") || file.starts_with("examples/"))
                })
                .collect::<Option<Vec<&str>>>()
            else {
                continue;
            };
            rows += 1;
            for file in files {
                let source = fs::read_to_string(Path::new(ROOT).join(file))
                    .unwrap_or_else(|error| panic!("{tour} names {file}: {error}"));
                for name in names.split('`').skip(1).step_by(2) {
                    assert!(
                        source.contains(name),
                        "{tour} says the original's `{name}` is in {file}, and it is not"
                    );
                }
            }
        }
        assert!(rows >= 5, "{tour} places the original's names in files");
    }
}

fn collect_sources(dir: &Path, into: &mut String) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_sources(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
}

/// A stand-in for cargo that prints `test result:` lines as cargo test does (one of them
/// on stderr, as cargo prints a failing target's) and exits with `$FAKE_STATUS`.
const FAKE_CARGO_TEST: &str = "#!/bin/sh
echo 'running 12 tests'
echo 'test result: ok. 12 passed; 0 failed; 4 ignored; 0 measured; 0 filtered out'
echo 'test result: FAILED. 3 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out' >&2
echo 'running 0 tests'
echo 'test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out'
exit \"$FAKE_STATUS\"
";

/// `make test` with the stand-in cargo exiting `status`: make's exit status, and its
/// output (stdout and stderr) as lines.
fn make_test_with_fake_cargo(status: i32) -> (Option<i32>, Vec<String>) {
    let copy = copy_of_the_project();
    let cargo = copy.path().join("fake-cargo");
    fs::write(&cargo, FAKE_CARGO_TEST).unwrap();
    fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new("make")
        .arg("-C")
        .arg(copy.path())
        .arg("--no-print-directory")
        .arg(format!("CARGO={}", cargo.display()))
        .arg("test")
        .env("FAKE_STATUS", status.to_string())
        .output()
        .expect("run make");
    // The recipe sends cargo's stderr through tee too, so stdout holds every line.
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect();
    (output.status.code(), lines)
}

/// `make test` ends on the total of every test target, not on the last target's own
/// `0 passed`, in the one plain line CI reads, with the ignored tests (those that need
/// what this machine lacks, such as the original server) counted apart, never as
/// passed; and exits as cargo did.
#[test]
fn make_test_ends_on_the_total_of_every_target_and_keeps_cargos_exit_status() {
    let (status, lines) = make_test_with_fake_cargo(0);
    assert_eq!(status, Some(0), "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("make test: 15 passed, 1 failed, 5 skipped")
    );
    let (status, lines) = make_test_with_fake_cargo(101);
    assert_ne!(status, Some(0), "cargo's failure is make's: {lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("make test: 15 passed, 1 failed, 5 skipped")
    );
}

/// `make bench` with an ORIGINAL that is not there says so and stops, before measuring.
#[test]
fn make_bench_names_a_missing_original_server() {
    let output = Command::new("bash")
        .arg(Path::new(ROOT).join("bench/run.sh"))
        .env("ORIGINAL", "/nonexistent/original-server")
        .output()
        .expect("run bench/run.sh");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ORIGINAL=/nonexistent/original-server: no such file"),
        "{stderr}"
    );
}
