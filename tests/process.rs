//! The `chat-server` binary as an operator runs it: signals, exit statuses, error
//! messages, and running out of file descriptors.

mod common;

use common::child::*;
use common::*;
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_chat-server");

/// Runs the binary to completion: its status and everything it printed on stderr.
fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let output = Command::new(SERVER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run chat-server");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_clean_stop_on(signal: &str) {
    let mut server = run_server("", &[]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    raw_login(&mut a, "1001");
    raw_login(&mut b, "1002");
    let mut idle = connect(server.addr);
    send(&mut idle, &ints(&[3, 0]));
    read_n(&mut idle, 12); // the server has its thread running
    server.signal(signal);
    let status = server.exit_within(Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "exit status after SIG{signal}");
    for client in [&mut a, &mut b, &mut idle] {
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("EOF, not a reset");
        assert!(rest.is_empty());
    }
}

#[test]
fn sigterm_stops_the_server_with_status_0_and_clients_see_eof() {
    assert_clean_stop_on("TERM");
}

#[test]
fn sigint_stops_the_server_with_status_0_and_clients_see_eof() {
    assert_clean_stop_on("INT");
}

#[test]
fn a_bad_flag_exits_2_naming_the_flag() {
    for (args, words) in [
        (&["--prot", "1"][..], "--prot"),
        (&["--port", "seventy"][..], "--port"),
        (&["--max-clients", "0"][..], "--max-clients"),
        (&["--mailbox-limit", "0"][..], "--mailbox-limit"),
        (&["--store-limit", "0"][..], "--store-limit"),
    ] {
        let (status, stderr) = run_to_exit(args);
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(stderr.contains("--help"), "a hint: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let output = Command::new(SERVER).arg("--help").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("--users FILE"));
    let output = Command::new(SERVER).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("chat-server "));
}

#[test]
fn a_bad_users_file_exits_2_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.txt");
    std::fs::write(&users, "# accounts\nalice:secret\nbob\n").unwrap();
    let (status, stderr) = run_to_exit(&["--port", "0", "--users", users.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("users.txt, line 3"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nobody yet\n").unwrap();
    let (status, stderr) = run_to_exit(&["--port", "0", "--users", empty.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("empty.txt") && stderr.contains("no accounts"),
        "{stderr}"
    );

    let missing = dir.path().join("missing.txt");
    let (status, stderr) = run_to_exit(&["--port", "0", "--users", missing.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("missing.txt"), "{stderr}");
}

#[test]
fn a_users_file_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.txt");
    // Saved by a Windows editor: a byte order mark and CRLF line ends.
    std::fs::write(&users, "\u{FEFF}alice:secret\r\nbob:\n").unwrap();
    let server = run_server("", &["--users", users.to_str().unwrap()]);
    let mut alice = connect(server.addr);
    send(&mut alice, &login_frame("alice", "secret"));
    assert_frames!(read_n(&mut alice, 12), ints(&[1, 40, 1]));
    send(&mut alice, &login_frame("1001", PASSWORD));
    assert_frames!(read_n(&mut alice, 12), ints(&[1, 40, -1]), "no built-ins");
}

#[test]
fn an_unusable_data_directory_exits_2_with_one_line() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = file.path().join("data");
    for (dir, words) in [
        (file.path().to_str().unwrap(), "not a directory"),
        (under_a_file.to_str().unwrap(), "cannot be used"),
        ("/proc/nonexistent/data", "cannot be created"),
        ("/proc/self", "cannot write there"),
    ] {
        let (status, stderr) = run_to_exit(&["--port", "0", "--data-dir", dir]);
        assert_eq!(status.code(), Some(2), "{dir}: {stderr}");
        assert!(stderr.contains(words), "{dir}: {stderr}");
        assert!(stderr.contains(dir), "names the directory: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn a_port_in_use_exits_1_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, stderr) = run_to_exit(&["--bind", "127.0.0.1", "--port", &port]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("already in use"), "{stderr}");
}

/// An address of a documentation range (TEST-NET-1, RFC 5737): no machine has it.
const NOT_OUR_ADDRESS: &str = "192.0.2.1";
/// A port below 1024, which only a privileged process may listen on.
const PRIVILEGED_PORT: u16 = 1;

/// A number from /proc/sys (`net/ipv4/ip_nonlocal_bind`), if there is one.
fn sysctl(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/sys/{name}")).ok()?;
    text.trim().parse().ok()
}

/// True when this process runs as root (its effective user id is 0).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uids = status
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .unwrap();
    uids.split_whitespace().nth(2) == Some("0")
}

/// The failure's one line: what went wrong in words, what to do, no `os error 99`.
fn assert_one_sentence(stderr: &str, starts: &str, words: &str) {
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "one line: {stderr}");
    assert!(line.starts_with(starts), "{stderr}");
    assert!(line.contains(words), "{stderr}");
    assert!(!line.contains("os error"), "the system's words: {stderr}");
}

#[test]
fn an_address_this_machine_does_not_have_exits_1_saying_so() {
    // With ip_nonlocal_bind on, Linux lets a program listen on any address at all.
    if sysctl("net/ipv4/ip_nonlocal_bind") != Some(0) {
        eprintln!("skipped: net.ipv4.ip_nonlocal_bind is on, so any address can be bound");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data"); // created private: nothing to log about it
    let data = data.to_str().unwrap();
    let (status, stderr) =
        run_to_exit(&["--bind", NOT_OUR_ADDRESS, "--port", "0", "--data-dir", data]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_one_sentence(
        &stderr,
        &format!("chat-server: cannot listen on {NOT_OUR_ADDRESS}:0: "),
        "this machine has no such address (choose one of its own with --bind",
    );
}

#[test]
fn a_port_below_1024_without_privilege_exits_1_saying_so() {
    if sysctl("net/ipv4/ip_unprivileged_port_start")
        .is_none_or(|start| start <= u32::from(PRIVILEGED_PORT))
    {
        eprintln!("skipped: every port is open to every program on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = PRIVILEGED_PORT.to_string();
    let mut command = if running_as_root() {
        // Root may listen anywhere: take that privilege away for this one run.
        let mut setpriv = Command::new("setpriv");
        setpriv.args([
            "--inh-caps=-net_bind_service",
            "--bounding-set=-net_bind_service",
            SERVER,
        ]);
        setpriv
    } else {
        Command::new(SERVER)
    };
    command.args(["--bind", "127.0.0.1", "--port", &port, "--data-dir"]);
    let data = dir.path().join("data"); // created private: nothing to log about it
    let Ok(output) = command.arg(data).stdin(Stdio::null()).output() else {
        eprintln!("skipped: running as root, and setpriv is not installed");
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_one_sentence(
        &stderr,
        &format!("chat-server: cannot listen on 127.0.0.1:{port}: "),
        "may listen on a port below 1024 (choose --port 1024 or above",
    );
}

/// The messages themselves, for every way a bind can fail that an operator causes,
/// whatever this machine allows.
#[test]
fn every_bind_failure_is_one_sentence_naming_the_address_and_what_to_do() {
    use std::io::{Error, ErrorKind};
    for (kind, port, words) in [
        (
            ErrorKind::AddrInUse,
            12345,
            "already in use (is another server running?",
        ),
        (
            ErrorKind::AddrNotAvailable,
            12345,
            "no such address (choose one",
        ),
        (
            ErrorKind::PermissionDenied,
            80,
            "below 1024 (choose --port 1024 or above",
        ),
        (
            ErrorKind::PermissionDenied,
            12345,
            "does not allow this program",
        ),
    ] {
        let addr = SocketAddr::from(([192, 0, 2, 1], port));
        let error = chatroom::StartError::Bind {
            addr,
            error: Error::from(kind),
        };
        assert_eq!(error.exit_code(), 1, "{kind:?}");
        let text = error.to_string();
        assert_one_sentence(&text, &format!("cannot listen on {addr}: "), words);
    }
}

/// A flood of events that each log a line (messages into a full mailbox, unknown frame
/// types, logins from a blocked address) costs a few lines a second per kind. (That the
/// next line to get out counts the held-back ones is a unit test of src/log_limit.rs.)
#[test]
fn a_flood_of_bad_requests_costs_a_few_log_lines_a_second() {
    const FLOOD: usize = 3_000;
    const BLOCKED_LOGINS: usize = 200;
    // Lines of one kind per second, as src/log_limit.rs allows.
    const LINES_PER_SECOND: usize = chatroom::log_limit::LINES_PER_WINDOW as usize;
    let mut server = run_server("", &["--mailbox-limit", "1", "--login-failures", "1"]);
    let started = Instant::now();

    let mut flooder = connect(server.addr);
    raw_login(&mut flooder, "1001");
    // The one message 1002's mailbox holds: every later one finds it full.
    send(
        &mut flooder,
        &chat_frame("1001", "1002", "fills the mailbox"),
    );
    assert_frames!(read_n(&mut flooder, 12), ints(&[2, 140, 0]), "queued");
    read_n(&mut flooder, 140);
    let mut burst = Vec::new();
    for _ in 0..FLOOD {
        burst.extend(chat_frame("1001", "1002", "into a full mailbox"));
        burst.extend(ints(&[99, 0]));
    }
    send(&mut flooder, &burst);
    for i in 0..FLOOD {
        assert_frames!(read_n(&mut flooder, 12), ints(&[2, 140, -7]), "echo {i}");
        read_n(&mut flooder, 140);
        assert_frames!(read_n(&mut flooder, 12), ints(&[99, 0, -4]), "reply {i}");
    }
    // One failure blocks 127.0.0.1; every later login from it is refused unchecked.
    let mut guesser = connect(server.addr);
    send(&mut guesser, &login_frame("1002", "guess"));
    assert_frames!(read_n(&mut guesser, 12), ints(&[1, 40, -1]));
    for _ in 0..BLOCKED_LOGINS {
        let mut blocked = connect(server.addr);
        send(&mut blocked, &login_frame("1002", PASSWORD));
        assert_frames!(read_n(&mut blocked, 12), ints(&[1, 40, -6]));
    }
    let seconds = started.elapsed().as_secs() as usize + 1;
    server.signal("TERM");
    server.exit_within(Duration::from_secs(2));
    let log: Vec<String> = server.log.iter().collect();

    // Each second may hold a window's worth, and a window may straddle two seconds.
    let allowed = LINES_PER_SECOND * (seconds + 1);
    for (kind, floods) in [
        ("is full", FLOOD),
        ("unknown frame type", FLOOD),
        ("login refused unchecked", BLOCKED_LOGINS),
        ("connected", BLOCKED_LOGINS),
    ] {
        let lines: Vec<&String> = log.iter().filter(|line| line.contains(kind)).collect();
        assert!(
            !lines.is_empty() && lines.len() <= allowed,
            "{} lines with {kind:?} for {floods} events in {seconds} s",
            lines.len()
        );
    }
}

#[test]
fn the_built_in_users_on_a_public_address_are_warned_about() {
    let server = run_server("", &["--bind", "0.0.0.0"]);
    let warning = server.wait_for_log("anyone who can reach this port");
    assert!(warning.contains("--users"), "{warning}");
    drop(server);

    let server = run_server("", &[]); // 127.0.0.1
    let mut client = connect(server.addr);
    raw_login(&mut client, "1001"); // the server is up and past its startup
    let log = server.drain_log();
    assert!(
        !log.iter().any(|line| line.contains("anyone who can reach")),
        "no warning on loopback: {log:?}"
    );
}
