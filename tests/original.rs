//! `chat-client` against the ORIGINAL C++ server: it must speak as the article's Qt
//! client does (its own name in the sender field, the echo before the delivery), and
//! where the original never answers (USERS, the room, a message while its sender is
//! alone online) give up in bounded time and say why.
//!
//! These need a build of the original server (BENCHMARKS.md says how to build one), so
//! they are ignored unless asked for, and `make test` counts them as ignored, not as
//! passed: the repository stands alone. Run them with `ORIGINAL` naming the build:
//! `ORIGINAL=/path/to/original-server cargo test --release --test original --
//! --include-ignored`. Asked for without `ORIGINAL`, they fail saying so.
//!
//! Each test starts its own original server on a free port and kills it at the end:
//! the original never forgets a client that left (its thread spins at 100% CPU and
//! its name stays in the online map), so a server must not outlive its test. Clients
//! connect one at a time, each after the previous one's login was answered: the
//! original hands the accepted socket to its thread through a pointer that the next
//! accept overwrites.

mod common;
mod terminal;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use terminal::*;

/// The line the original prints once it listens, before each `accept`.
const WAITING_FOR_CLIENTS: &str = "等待客户端上线";
/// Free ports tried before giving up: another process may take the one we found
/// before the original binds it.
const PORT_TRIES: usize = 5;
/// Longer than the client's longest bounded wait (the echo, 12 s): a client that
/// waits out a bound must be done well within this.
const CLIENT_DONE: Duration = Duration::from_secs(20);
/// Far below the echo's bound: a `--send` that took this long waited for something
/// other than its echo.
const PROMPTLY: Duration = Duration::from_secs(5);

/// The original server, running; killed when dropped.
struct Original {
    child: Child,
    addr: SocketAddr,
}

impl Original {
    /// Starts `$ORIGINAL` on a free port; panics, saying what to set, without it.
    fn start() -> Original {
        let Some(binary) = std::env::var_os("ORIGINAL") else {
            panic!(
                "set ORIGINAL=/path/to/original-server to run the client against the \
                 original C++ server (BENCHMARKS.md says how to build it)"
            );
        };
        for _ in 0..PORT_TRIES {
            // It binds every interface, as the free port is found here.
            let port = TcpListener::bind("0.0.0.0:0")
                .and_then(|probe| probe.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(&binary)
                .env("PORT", port.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start ORIGINAL={binary:?}: {error}"));
            // It prints its first line once it listens; a port taken meanwhile makes it
            // exit with "bind error" instead, and stdout ends.
            let mut stdout = BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            if first.contains(WAITING_FOR_CLIENTS) {
                // It logs every connection and message: the pipe must be drained, or a
                // full pipe blocks it, and a closed one kills it (SIGPIPE).
                std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
                return Original {
                    child,
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("ORIGINAL={binary:?} did not start on any of {PORT_TRIES} free ports");
    }
}

impl Drop for Original {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `run_client`, timed.
fn timed_run(addr: SocketAddr, args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let output = run_client(&addr.to_string(), args, "");
    (output, started.elapsed())
}

#[test]
#[ignore = "needs ORIGINAL=/path/to/original-server (docs/TESTING.md)"]
fn send_exits_at_its_echo_and_the_listener_shows_who_wrote() {
    let original = Original::start();
    let listener = Terminal::open(original.addr, &["1002", PASSWORD, "--listen"]);
    listener.expect_line("listening");
    // The original writes the echo before the delivery, and relays the sender field
    // as the client wrote it.
    let (output, took) = timed_run(
        original.addr,
        &["1001", PASSWORD, "--send", "1002", "hello original"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    let (time, line) = said
        .split_once("] ")
        .expect("a line that starts with its time");
    assert!(time.starts_with('['), "{said}");
    // The original's flag 1 says "written to the receiver's socket": sent, not more.
    assert_eq!(line, "1001 → 1002: hello original (sent)\n");
    assert!(
        took < PROMPTLY,
        "--send took {took:?} to see its flag 1 OK echo"
    );
    listener.expect_line("1001: hello original");
}

#[test]
#[ignore = "needs ORIGINAL=/path/to/original-server (docs/TESTING.md)"]
fn send_while_alone_online_gives_up_and_says_the_original_ignores_it() {
    let original = Original::start();
    // Alone online, the original does not even read the CHAT body: no echo comes.
    let (output, took) = timed_run(original.addr, &["1001", PASSWORD, "--send", "1002", "x"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a script must see the failure"
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("no echo") && stdout.contains("only one online"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "one line says why: {stdout}");
    assert!(took < CLIENT_DONE, "took {took:?}");
}

#[test]
#[ignore = "needs ORIGINAL=/path/to/original-server (docs/TESTING.md)"]
fn who_says_the_original_does_not_answer_users() {
    let original = Original::start();
    let (output, took) = timed_run(original.addr, &["1001", PASSWORD, "--who"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a script must see the failure"
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("does not answer USERS") && stdout.contains("original"),
        "{stdout}"
    );
    assert!(took < CLIENT_DONE, "took {took:?}");
}

#[test]
#[ignore = "needs ORIGINAL=/path/to/original-server (docs/TESTING.md)"]
fn an_interactive_exchange_shows_who_wrote_each_echo_and_what_the_original_lacks() {
    let original = Original::start();
    let mut simo = Terminal::open(original.addr, &["似末", PASSWORD]);
    simo.expect_line("logged in as 似末");
    let mut maka = Terminal::open(original.addr, &["玛卡巴卡", PASSWORD]);
    maka.expect_line("logged in as 玛卡巴卡");

    simo.type_line("@玛卡巴卡 你好");
    simo.expect_line("似末 → 玛卡巴卡: 你好 (sent)");
    maka.expect_line("似末: 你好");
    maka.expect_line("(now talking to 似末: a bare line goes to them)");
    maka.type_line("你好呀");
    maka.expect_line("玛卡巴卡 → 似末: 你好呀 (sent)");
    simo.expect_line("玛卡巴卡: 你好呀");

    // The original has no room: its echo says 1 and nobody gets it. The client cannot
    // count who heard it (no USERS), and says so.
    simo.type_line("*大家好");
    simo.expect_line("(said to the room, but the server does not answer USERS");
    simo.type_line("/who");
    simo.expect_line("cannot list who is online");

    // The original never closes a connection whose client has left: leaving must not
    // wait for it.
    simo.type_line("/quit");
    maka.type_line("/quit");
    assert_eq!(simo.exit_code(), Some(0));
    assert_eq!(maka.exit_code(), Some(0));
}
