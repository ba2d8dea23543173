//! What ships beside the code: the Makefile's targets (run with `make` in a temporary
//! copy, with `CARGO=true` so that nothing is built), the example users file and the
//! systemd unit. (The Wireshark dissector, which `make install` also ships, has its own
//! test: tests/dissector.rs.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A temporary copy of what the Makefile's targets touch, with stand-in binaries.
fn copy_of_the_project() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for file in [
        "Makefile",
        "README.md",
        "contrib/users.txt",
        "contrib/chat-server.service",
        "contrib/chatroom.lua",
    ] {
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

/// `systemd-analyze verify` on the unit, with ExecStart pointing at the built server;
/// skipped where systemd is not installed.
#[test]
fn the_systemd_unit_verifies() {
    let unit = fs::read_to_string(Path::new(ROOT).join("contrib/chat-server.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/chat-server "));
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/chat-server ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_chat-server")),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat-server.service");
    fs::write(&path, unit).unwrap();
    let Ok(output) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
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
