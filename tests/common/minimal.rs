//! `examples/minimal.rs` as the tests run it: built from its current source (once per
//! test process) and started on a free port. Shared by tests/minimal.rs and the client
//! tests that pair chat-client with it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The example server, running; killed when dropped.
pub struct Minimal {
    child: Child,
    addr: SocketAddr,
}

impl Minimal {
    /// Builds the example if its source changed, and starts it on a free port.
    pub fn start() -> Minimal {
        Minimal::start_through_shell("")
    }

    /// Like [`Minimal::start`], through `sh -c` with `shell_prefix` before the `exec`
    /// (`"ulimit -n 16;"`), so that a test can lower its limits.
    pub fn start_through_shell(shell_prefix: &str) -> Minimal {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{shell_prefix} exec \"$0\" 0"))
            .arg(example_binary())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the minimal example");
        let stdout = child.stdout.take().unwrap();
        // Owned from here: if it never says where it listens, the panic kills it.
        let mut minimal = Minimal {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let port = first
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("expected `listening on ADDR`, got {first:?}"));
        minimal.addr.set_port(port);
        minimal
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (the example's own: the shell `exec`s it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Minimal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example's binary, `target/<profile>/examples/minimal`, beside this test's
/// `target/<profile>/deps/`, freshly built from the current source. `cargo test` builds
/// examples only as test harnesses, and would not rebuild the binary after an edit.
pub fn example_binary() -> PathBuf {
    // Once per test process: the tests run in parallel, and one build serves them all.
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(build_example).clone()
}

fn build_example() -> PathBuf {
    let this_test = std::env::current_exe().unwrap();
    let profile_dir = this_test.parent().and_then(|deps| deps.parent()).unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--example", "minimal", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    // Up to date, this is a quick check; after an edit, a rebuild (its errors on stderr).
    let status = build
        .status()
        .expect("run cargo to build the minimal example");
    assert!(status.success(), "cargo build --example minimal failed");
    let binary = profile_dir.join("examples").join("minimal");
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}
