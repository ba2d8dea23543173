//! What ships beside the code: the Makefile's targets (run with `make` in a temporary
//! copy, with `CARGO=true` so that nothing is built), the example users file and the
//! systemd unit.

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
