//! The script modes: `--send` (one message, in parts if long, and what became of it),
//! `--who` (who is online) and `--listen` (what arrives, until the connection ends). Each
//! shows whatever arrives first (the messages stored for the user are handed over at
//! login), and leaves a receipts connection so that nothing shown comes again and
//! nothing unshown is lost.

use crate::say;
use crate::screen::{Purpose, Screen};
use crate::terminal;
use crate::transport::{Account, Ending, Event, Incoming, Outgoing};
use chatroom::blocking_client::ack_request;
use chatroom::protocol;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The status of a script mode whose request did not go through.
pub const EXIT_FAILURE: u8 = 1;
/// After the end of a receipts session, how long the client waits for the server to
/// hang up: `chat-server` closes at once on our end of stream.
pub const QUIT_LINGER: Duration = Duration::from_secs(1);

/// Sends the ACK that is due, if one is: after a burst of frames (nothing whole is left
/// to read), at most every 100 ms, or at once when many are unacknowledged. A failed
/// write is left to the reading side, which sees the connection end.
pub fn acknowledge(outgoing: &mut Outgoing, incoming: &Incoming, screen: &mut Screen) {
    if let Some(id) = screen.take_ack(Instant::now(), !incoming.has_whole_reply()) {
        let _ = outgoing.send(&ack_request(id));
    }
}

/// `--send`: one message (its parts), its outcome, and an exit status to match.
pub fn send_one(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
    to: &str,
    text: &str,
) -> Result<ExitCode, String> {
    let frames = screen.send(to, text)?;
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    outgoing.send_all(&frames).map_err(say::cannot_send)?;
    wait_for_answers(outgoing, incoming, screen)
}

/// `--who`: the online users, after whatever arrived first.
pub fn who(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
) -> Result<ExitCode, String> {
    screen.asking(Purpose::Who);
    outgoing
        .send(&protocol::users_request())
        .map_err(say::cannot_ask_who)?;
    wait_for_answers(outgoing, incoming, screen)
}

/// `--listen`: what arrives, until the connection ends; then why it ended, and status 1.
pub fn listen(
    account: &Account,
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
) -> Result<ExitCode, String> {
    terminal::line(&say::logged_in_listening(&screen.me));
    loop {
        match incoming.next(screen.wake_at()) {
            Event::Reply(reply) => screen.show(&reply),
            Event::Quiet => screen.expire(Instant::now()),
            Event::Ended(_) => {
                screen.finish();
                return Err(ended(account, &screen.me));
            }
        }
        acknowledge(outgoing, incoming, screen);
    }
}

/// Why the connection ended, in a sentence.
pub fn ended(account: &Account, me: &str) -> String {
    match account.why_it_ended() {
        Ending::NewerLogin => say::newer_login(me),
        Ending::ServerGone => say::server_gone(),
    }
}

/// Shows what arrives until every answer the screen waits for has come or timed out;
/// the exit status says whether they all went well. With receipts, what was shown is
/// acknowledged before the client leaves.
fn wait_for_answers(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    screen: &mut Screen,
) -> Result<ExitCode, String> {
    while screen.waiting() {
        match incoming.next(screen.wake_at()) {
            Event::Reply(reply) => screen.show(&reply),
            Event::Quiet => screen.expire(Instant::now()),
            Event::Ended(_) => {
                screen.finish();
                return Err(say::connection_ended_while_waiting());
            }
        }
        acknowledge(outgoing, incoming, screen);
    }
    screen.finish();
    if screen.receipts {
        leave(outgoing, incoming, screen);
    }
    Ok(if screen.failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// Leaves a receipts connection so that nothing shown comes again and nothing unshown
/// is lost: the last ACK, then our end of the stream, then whatever the server still
/// sends until it hangs up (at once, on our end of stream), shown but for deliveries:
/// those are not acknowledged, so the server keeps them for the next login, and the
/// client says how many. The server's hanging up says it has read the ACK.
fn leave(outgoing: &mut Outgoing, incoming: &mut Incoming, screen: &mut Screen) {
    if let Some(id) = screen.close_acks() {
        let _ = outgoing.send(&ack_request(id));
    }
    outgoing.finish();
    let until = Instant::now() + QUIT_LINGER;
    while let Event::Reply(reply) = incoming.next(Some(until)) {
        screen.show(&reply);
    }
    screen.say_held_back();
}
