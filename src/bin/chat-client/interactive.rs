//! The interactive mode: this thread reads what is typed and sends it; a printer thread
//! shows what arrives, acknowledges it, and, when the connection ends while the user is
//! still chatting, says why: a newer login of the same user elsewhere ends the client;
//! a server that went away is reconnected to, with back-off, receipts asked for again,
//! and what was stored meanwhile shown (what was shown before is not shown twice).
//!
//! Both threads write to the server (the printer its ACKs), through one lock, always
//! taken before the screen's, so that requests leave whole and in the order their ids
//! were chosen.

use crate::input::{Input, parse_line};
use crate::modes::{EXIT_FAILURE, QUIT_LINGER, acknowledge, ended};
use crate::say;
use crate::screen::{Purpose, Screen, USERS_TIMEOUT};
use crate::terminal;
use crate::transport::{Account, Ending, Event, Incoming, Outgoing, Refusal};
use crate::visible::visible_str;
use chatroom::blocking_client::{ack_request, read_request};
use chatroom::protocol;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How often the printer wakes to look at its deadlines while no frame arrives: the
/// typist may have started a wait since the printer last looked.
const TICK: Duration = Duration::from_millis(200);
/// The first wait before reconnecting, doubled after each failed try up to
/// [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(15);
/// How often the typist looks whether the stored messages have all come, before it
/// leaves.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// The most rounds of "acknowledge, then ask USERS" before leaving: each round lets the
/// server send up to its window (256) of what it still holds for us.
const MAX_SETTLE_ROUNDS: usize = 64;

/// What both threads share.
struct Shared {
    /// The connection's sending half; `None` while reconnecting.
    outgoing: Mutex<Option<Outgoing>>,
    screen: Mutex<Screen>,
    leaving: AtomicBool,
}

/// A lock (the screen's, the connection's). Nothing panics while holding one; if
/// something did, what it guards is still fit to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Chats until `/quit` or the end of input.
pub fn interactive(
    account: Account,
    password: String,
    (outgoing, incoming): (Outgoing, Incoming),
    mut screen: Screen,
    mut stdin: impl BufRead,
) -> Result<ExitCode, String> {
    terminal::line(&say::logged_in_interactive(&screen.me, &account.addr));
    screen.adopt_partner = true;
    screen.sends_reads = true;
    screen.settles_marks = true;
    let shared = Arc::new(Shared {
        outgoing: Mutex::new(Some(outgoing)),
        screen: Mutex::new(screen),
        leaving: AtomicBool::new(false),
    });
    let printer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || print_and_reconnect(&account, &password, incoming, &shared))
    };
    terminal::start_prompting(say::prompt(None));
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        // Someone typed: what is on the screen has been seen.
        send_reads(&shared);
        let Ok(line) = std::str::from_utf8(&line) else {
            // A GBK terminal, say: the server's names and texts are UTF-8.
            terminal::line(say::line_not_utf8());
            continue;
        };
        let line = line.trim_end_matches(['\r', '\n']);
        if !take_line(&shared, line) {
            break;
        }
        terminal::prompt();
    }
    leave(&shared);
    let _ = printer.join();
    let mut screen = lock(&shared.screen);
    screen.finish();
    screen.say_held_back();
    Ok(ExitCode::SUCCESS)
}

/// Does what one typed line says; false for `/quit`.
fn take_line(shared: &Shared, line: &str) -> bool {
    let input = {
        let mut screen = lock(&shared.screen);
        let screen = &mut *screen;
        let before = screen.partner.clone();
        let input = parse_line(line, &mut screen.partner, screen.last_sender.as_deref());
        if screen.partner != before {
            terminal::set_prompt(say::prompt(
                screen.partner.as_deref().map(visible_str).as_deref(),
            ));
        }
        input
    };
    // What the printer must wait for is noted before the request goes out, so that no
    // answer can arrive first.
    let mut outgoing = lock(&shared.outgoing);
    let mut screen = lock(&shared.screen);
    let frames = match input {
        Input::Quit => return false,
        Input::Nothing => return true,
        Input::Say(text) => {
            terminal::lines(&text);
            return true;
        }
        _ if outgoing.is_none() => {
            terminal::line(&say::not_connected());
            return true;
        }
        Input::Who => {
            if screen.users_unanswered {
                terminal::line(say::users_unanswered_before());
                return true;
            }
            screen.asking(Purpose::Who);
            vec![protocol::users_request()]
        }
        Input::Chat { to, text } => match screen.send(&to, &text) {
            Err(problem) => {
                terminal::line(&problem);
                return true;
            }
            Ok(frames) => frames,
        },
    };
    drop(screen);
    if let Some(link) = outgoing.as_mut() {
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        // A failed write shows as the connection's end, in the printer.
        let _ = link.send_all(&frames);
    }
    true
}

/// Sends READ to every sender whose messages were shown since the last READ to them.
fn send_reads(shared: &Shared) {
    let mut outgoing = lock(&shared.outgoing);
    let Some(link) = outgoing.as_mut() else {
        return;
    };
    let reads = lock(&shared.screen).take_reads();
    for (sender, id) in reads {
        let _ = link.send(&read_request(id, &sender));
    }
}

/// Leaves: on a receipts connection, first acknowledges what was shown and asks USERS,
/// and waits for its answer, so that everything delivered before it (the messages stored
/// for us, handed over at login) is shown, again while rounds bring more; then the last
/// ACK and our end of the stream. The printer
/// shows every last outcome before the process exits; deliveries after the last ACK
/// are left to the server for next time.
fn leave(shared: &Shared) {
    // The server sends a receiver at most 256 unacknowledged messages at once and the
    // rest as ACKs come: a round that brought deliveries is followed by another.
    for _ in 0..MAX_SETTLE_ROUNDS {
        let before = {
            let mut outgoing = lock(&shared.outgoing);
            let mut screen = lock(&shared.screen);
            let Some(link) = outgoing.as_mut() else {
                break;
            };
            if !screen.receipts || screen.users_unanswered {
                break;
            }
            if let Some(id) = screen.ack_now() {
                let _ = link.send(&ack_request(id));
            }
            screen.asking(Purpose::Settle);
            let _ = link.send(&protocol::users_request());
            screen.deliveries()
        };
        let until = Instant::now() + USERS_TIMEOUT;
        while lock(&shared.screen).settling_before_leaving() && Instant::now() < until {
            thread::sleep(SETTLE_POLL);
        }
        if lock(&shared.screen).deliveries() == before {
            break;
        }
    }
    shared.leaving.store(true, Ordering::Release);
    let mut outgoing = lock(&shared.outgoing);
    if let Some(link) = outgoing.as_mut() {
        let last_ack = lock(&shared.screen).close_acks();
        if let Some(id) = last_ack {
            let _ = link.send(&ack_request(id));
        }
        link.finish();
    }
}

/// The printer thread: shows what arrives over each connection in turn, until the user
/// leaves; reconnects after the server went away; ends the process after a newer login
/// elsewhere (the typist is blocked reading the terminal).
fn print_and_reconnect(account: &Account, password: &str, mut incoming: Incoming, shared: &Shared) {
    loop {
        print_until_the_end(&mut incoming, shared);
        if shared.leaving.load(Ordering::Acquire) {
            return;
        }
        *lock(&shared.outgoing) = None;
        lock(&shared.screen).connection_lost();
        match account.why_it_ended() {
            Ending::NewerLogin => {
                terminal::line(&ended(account, &account.name));
                std::process::exit(i32::from(EXIT_FAILURE));
            }
            Ending::ServerGone => terminal::line(&say::reconnecting()),
        }
        match reconnect(account, password, shared) {
            Some(next) => incoming = next,
            None => return,
        }
    }
}

/// Tries to log in again, waiting longer after each failure, until it works or the user
/// leaves (`None`). A refused password ends the client: it will not become right.
fn reconnect(account: &Account, password: &str, shared: &Shared) -> Option<Incoming> {
    let mut wait = RECONNECT_FIRST;
    loop {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if shared.leaving.load(Ordering::Acquire) {
                return None;
            }
            thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
        }
        wait = (wait * 2).min(RECONNECT_MAX);
        let Ok((mut outgoing, mut incoming)) = account.connect() else {
            continue;
        };
        // The screen is locked through the login, so that nothing typed goes out on the
        // new connection before the client knows what it speaks.
        let mut link = lock(&shared.outgoing);
        let mut screen = lock(&shared.screen);
        match account.log_in(&mut outgoing, &mut incoming, password) {
            Ok((receipts, login_ms)) => {
                screen.receipts = receipts;
                screen.login_ms = login_ms;
                *link = Some(outgoing);
                terminal::line(&say::reconnected(&account.addr));
                return Some(incoming);
            }
            Err(Refusal::WrongPassword(problem)) => {
                terminal::line(&problem);
                std::process::exit(i32::from(EXIT_FAILURE));
            }
            // The server is starting, or busy: try again later.
            Err(Refusal::Other(_)) => {}
        }
    }
}

/// Shows what arrives and what timed out until the connection ends, or, once the user
/// is leaving, until nothing is outstanding and the server has had `QUIT_LINGER` to
/// hang up.
fn print_until_the_end(incoming: &mut Incoming, shared: &Shared) {
    let mut linger_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let until = {
            let screen = lock(&shared.screen);
            if shared.leaving.load(Ordering::Acquire) && !screen.waiting() {
                let until = *linger_until.get_or_insert(now + QUIT_LINGER);
                if now >= until {
                    return;
                }
            }
            [screen.wake_at(), linger_until, Some(now + TICK)]
                .into_iter()
                .flatten()
                .min()
        };
        match incoming.next(until) {
            Event::Reply(reply) => lock(&shared.screen).show(&reply),
            Event::Quiet => lock(&shared.screen).expire(Instant::now()),
            Event::Ended(_) => return,
        }
        if lock(&shared.screen).ack_pending() {
            let mut outgoing = lock(&shared.outgoing);
            if let Some(link) = outgoing.as_mut() {
                acknowledge(link, incoming, &mut lock(&shared.screen));
            }
        }
    }
}
