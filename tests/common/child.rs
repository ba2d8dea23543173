//! The `chat-server` binary run as a child process, as an operator runs it: for the
//! tests that need what only a real process has (its own CPU time, descriptor limit,
//! threads, signals and log). When a test that started it fails, the server's whole
//! log is printed with the failure.

use super::next_line_with;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Set by cargo for the tests of this package.
pub const SERVER: &str = env!("CARGO_BIN_EXE_chat-server");

/// The running binary, its address, and its log lines as they come.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: mpsc::Receiver<String>,
    /// The log lines up to the one that says where it listens.
    pub startup: Vec<String>,
    /// The temporary directory that holds its data directory, unless the test gave one.
    pub data: Option<tempfile::TempDir>,
    /// Every log line so far, whoever has read it from `log`: shown if the test fails.
    transcript: Arc<Mutex<Vec<String>>>,
    /// The thread that reads stderr; it ends at the child's exit.
    forwarder: Option<thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            // Every line, up to the child's last.
            if let Some(forwarder) = self.forwarder.take() {
                let _ = forwarder.join();
            }
            // The log usually says why: a refused login, a closed connection, a crash.
            let transcript = self.transcript.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("--- chat-server's log ({} lines) ---", transcript.len());
            for line in transcript.iter() {
                eprintln!("{line}");
            }
            eprintln!("--- end of chat-server's log ---");
        }
    }
}

impl Running {
    /// Waits for a log line containing `words`; panics after `READ_TIMEOUT`.
    pub fn wait_for_log(&self, words: &str) -> String {
        next_line_with(&self.log, words, "chat-server's log")
    }

    /// Every log line so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    pub fn signal(&self, name: &str) {
        // The shell's own `kill`, so the test needs no procps.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {}", self.child.id()))
            .status()
            .expect("run sh");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts the binary on a free port through `sh -c` (so a test can prefix `ulimit`),
/// and waits until it is listening.
pub fn run_server(shell_prefix: &str, args: &[&str]) -> Running {
    let data = tempfile::tempdir().unwrap();
    let mut running = run_server_on(&data.path().join("data"), shell_prefix, args);
    running.data = Some(data);
    running
}

/// Like [`run_server`], with the data directory `data_dir` (which outlives the server,
/// for a restart).
pub fn run_server_on(data_dir: &std::path::Path, shell_prefix: &str, args: &[&str]) -> Running {
    let mut command = format!("{shell_prefix} exec \"$0\" --bind 127.0.0.1 --port 0");
    command.push_str(" --data-dir \"$1\"");
    for (i, _) in args.iter().enumerate() {
        command.push_str(&format!(" \"${}\"", i + 2));
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg(SERVER)
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat-server");
    let transcript = Arc::default();
    let (log, forwarder) = forward_lines(child.stderr.take().unwrap(), Arc::clone(&transcript));
    let mut running = Running {
        child,
        addr: "127.0.0.1:1".parse().unwrap(),
        log,
        startup: Vec::new(),
        data: None,
        transcript,
        forwarder: Some(forwarder),
    };
    let line = loop {
        let line = running.wait_for_log("");
        running.startup.push(line.clone());
        if line.contains("listening on ") {
            break line;
        }
    };
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address after `listening on`");
    running.addr = addr.parse().expect("a socket address");
    running
}

/// The child's stderr, line by line, to the test (through the channel) and into
/// `transcript`.
fn forward_lines(
    stderr: ChildStderr,
    transcript: Arc<Mutex<Vec<String>>>,
) -> (mpsc::Receiver<String>, thread::JoinHandle<()>) {
    let (lines, log) = mpsc::channel();
    let forwarder = thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            transcript
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            // The test may have stopped listening; the transcript still wants the rest.
            let _ = lines.send(line);
        }
    });
    (log, forwarder)
}

/// User plus system CPU time of a process, in clock ticks (usually 1/100 s).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The number the process's next descriptor gets: the lowest one not in use. A soft
/// limit of this leaves no descriptor free; one more leaves exactly one.
pub fn lowest_free_descriptor(pid: u32) -> usize {
    let in_use: std::collections::HashSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    (0..).find(|fd| !in_use.contains(fd)).unwrap()
}

/// The soft and hard descriptor limits of a process, as its limits file writes them.
pub fn descriptor_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a descriptor limit");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

/// prlimit from util-linux sets a running process's limits; false (with a message) where
/// it is missing or not allowed.
pub fn set_descriptor_limit(pid: u32, soft: &str) -> bool {
    let (_, hard) = descriptor_limits(pid);
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:{hard}"))
        .status();
    match status {
        Ok(status) if status.success() => true,
        _ => {
            eprintln!("skipped: prlimit (util-linux) cannot lower a running server's limit here");
            false
        }
    }
}
