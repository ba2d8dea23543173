//! What the client shows and what it waits for, in every mode: others' messages (whole,
//! however many parts they came in, made visible, with the time they were sent), our own
//! messages with their one mark, answers to USERS, and answers that never came.
//!
//! Our own message shows once every part of it is echoed, as `[time] me → them: text`
//! with its mark: sent (or stored for later, or why it was not sent). With receipts, a
//! sent message's line waits a moment ([`MARK_SETTLE`]) for the receiver's client to
//! acknowledge it, so that it usually shows as delivered at once; after that, a line of
//! its own says when a mark moves forward (delivered, read), and only if no line on the
//! screen shows it already.

use crate::clock::Clock;
use crate::parts::{self, Joiner, Whole};
use crate::receipts::{Acks, Mark, Progress};
use crate::say;
use crate::terminal;
use crate::transport::ECHO_TIMEOUT;
use crate::visible::{visible, visible_str};
use chatroom::blocking_client::Reply;
use chatroom::message_id;
use chatroom::protocol::{self, ChatMessage, Flag, Kind, MessageText, Name, ROOM};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long the line of a message just sent waits for its receiver's client to
/// acknowledge it (three of the receiver's ACK intervals), so that one line shows it
/// delivered instead of two.
pub const MARK_SETTLE: Duration = Duration::from_millis(300);
/// How long a USERS request may go unanswered before the client concludes that the
/// server has no USERS (the original server ignores it): `chat-server` answers at once.
pub const USERS_TIMEOUT: Duration = Duration::from_secs(3);

/// What a USERS request was sent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// `--who` or `/who`: the list is shown.
    Who,
    /// Sent right after a room message, to say how many others it reached: the room's
    /// echo says 1 even when nobody else is online. `line`, the message's own line, once
    /// its echo is in.
    RoomCount { line: Option<String> },
    /// Sent before leaving: everything delivered before its answer (the stored messages
    /// a login hands over) is shown and acknowledged first.
    Settle,
}

/// One part sent and waiting for its echo.
struct Sent {
    receiver: Name,
    text: MessageText,
    deadline: Instant,
    /// The message it is part of (a key of `Screen::pending`).
    message: u64,
}

/// A message of ours whose parts are not all echoed yet.
struct Pending {
    to: Name,
    text: String,
    parts: usize,
    echoed: usize,
    /// Echoed 0: stored for later.
    stored: bool,
    /// The first refusal among its parts' echoes, and how many parts were accepted.
    refused: Option<i32>,
    accepted: usize,
    /// The last part's id (receipts), for the time and the receipts that cover it.
    last_id: u64,
}

/// A USERS request waiting for its answer.
struct Ask {
    purpose: Purpose,
    deadline: Instant,
}

/// Our message's line, waiting a moment for its mark to move forward.
struct Settling {
    to: Name,
    id: u64,
    /// The line without its mark, and how many parts it took.
    line: String,
    parts: usize,
    deadline: Instant,
}

/// What the client shows and waits for.
pub struct Screen {
    /// Who we are logged in as.
    pub me: String,
    clock: Clock,
    /// Where a bare line goes: the last `@name`, or else the first to write to us.
    pub partner: Option<String>,
    /// Who wrote to us last, for `/r`.
    pub last_sender: Option<String>,
    /// Whether whoever writes first becomes the partner (interactive only).
    pub adopt_partner: bool,
    /// Whether a sent message's line waits for its mark to settle (interactive only).
    pub settles_marks: bool,
    /// Whether READ is sent for what was shown (interactive only).
    pub sends_reads: bool,
    /// The server said yes to RECEIPTS: messages come as MESSAGE frames, with ids.
    pub receipts: bool,
    /// When the current connection's LOGIN went out (this machine's milliseconds): a
    /// delivery sent before it waited for us.
    pub login_ms: u64,
    /// A USERS request went unanswered: this server has none (an original?), and is
    /// not asked again.
    pub users_unanswered: bool,
    /// Something asked did not go through: a script mode exits 1.
    pub failed: bool,
    /// Parts due to be echoed, oldest first: a server answers a connection in order.
    echoes: VecDeque<Sent>,
    pending: BTreeMap<u64, Pending>,
    next_message: u64,
    asks: VecDeque<Ask>,
    /// The receiving side's receipts state.
    pub acks: Acks,
    /// Deliveries that came after the last ACK, while leaving: not shown, counted.
    held_back: usize,
    progress: Progress,
    /// Receipts from someone whose echo is still due: the receiver's ACK can overtake
    /// the echo on its way to us. Shown once the echo is in (or given up).
    deferred: Vec<(Kind, u64, Vec<u8>)>,
    settling: VecDeque<Settling>,
    /// Our messages shown per receiver, by id, with the mark their line shows.
    shown_marks: HashMap<Vec<u8>, BTreeMap<u64, Mark>>,
    joiner: Joiner,
    /// The last message shown had waited for us: the next one that did needs no new
    /// "while you were away" line.
    in_away_block: bool,
    /// Deliveries (MESSAGE frames from others) taken so far.
    deliveries: u64,
}

impl Screen {
    /// A screen for `me`, showing times by `clock`.
    pub fn new(me: &str, clock: Clock) -> Screen {
        Screen {
            me: me.to_string(),
            clock,
            partner: None,
            last_sender: None,
            adopt_partner: false,
            settles_marks: false,
            sends_reads: false,
            receipts: false,
            login_ms: 0,
            users_unanswered: false,
            failed: false,
            echoes: VecDeque::new(),
            pending: BTreeMap::new(),
            next_message: 0,
            asks: VecDeque::new(),
            acks: Acks::default(),
            held_back: 0,
            progress: Progress::default(),
            deferred: Vec::new(),
            settling: VecDeque::new(),
            shown_marks: HashMap::new(),
            joiner: Joiner::default(),
            in_away_block: false,
            deliveries: 0,
        }
    }

    /// Whether something shown is not acknowledged yet.
    pub fn ack_pending(&self) -> bool {
        self.acks.pending(self.joiner.lowest_held_id())
    }

    /// When the pending ACK may go out.
    pub fn ack_deadline(&self) -> Option<Instant> {
        self.acks.deadline(self.joiner.lowest_held_id())
    }

    /// The id to acknowledge now, if an ACK is due.
    pub fn take_ack(&mut self, now: Instant, burst_over: bool) -> Option<u64> {
        let held = self.joiner.lowest_held_id();
        self.acks.take(now, burst_over, held)
    }

    /// The ACK to send now, whatever the interval, if anything shown is unacknowledged.
    pub fn ack_now(&mut self) -> Option<u64> {
        let held = self.joiner.lowest_held_id();
        self.acks.take_now(Instant::now(), held)
    }

    /// How many deliveries have come on receipts connections in this run.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }

    /// The last ACK, if anything is unacknowledged; no more after it. Parts still held
    /// are shown now, incomplete, and acknowledged with the rest.
    pub fn close_acks(&mut self) -> Option<u64> {
        for whole in self.joiner.expire(None) {
            self.show_whole(whole);
        }
        self.acks.close(None)
    }

    /// The READs due, one per sender.
    pub fn take_reads(&mut self) -> Vec<(Name, u64)> {
        self.acks.take_reads()
    }

    /// Says how many deliveries came while the client was leaving, if any.
    pub fn say_held_back(&mut self) {
        match std::mem::take(&mut self.held_back) {
            0 => {}
            count => terminal::line(&say::held_back(count)),
        }
    }

    /// The CHAT requests that send `text` to `to`, in parts if it is long, noted as
    /// waiting for their echoes; with a USERS request after them for a room message, to
    /// count who heard it. The sender field holds our name, as the original client
    /// writes it: the original server relays the field as written.
    pub fn send(&mut self, to: &str, text: &str) -> Result<Vec<Vec<u8>>, String> {
        let receiver = Name::new(to).map_err(|_| say::name_too_long(&visible_str(to)))?;
        if text.len() > parts::max_text_len() {
            return Err(say::message_too_long(parts::max_text_len()));
        }
        let sender = Name::new(&self.me).expect("the name was accepted at login");
        let parts = parts::split(text);
        let message = self.next_message;
        self.next_message += 1;
        self.pending.insert(
            message,
            Pending {
                to: receiver,
                text: text.to_string(),
                parts: parts.len(),
                echoed: 0,
                stored: false,
                refused: None,
                accepted: 0,
                last_id: 0,
            },
        );
        let deadline = Instant::now() + ECHO_TIMEOUT;
        let mut frames = Vec::new();
        for part in &parts {
            let text = MessageText::new(part).expect("parts fit the field");
            self.echoes.push_back(Sent {
                receiver,
                text,
                deadline,
                message,
            });
            frames.push(protocol::chat_request(&ChatMessage {
                sender,
                receiver,
                text,
            }));
        }
        if receiver.as_bytes() == ROOM.as_bytes() && !self.users_unanswered {
            self.asking(Purpose::RoomCount { line: None });
            frames.push(protocol::users_request());
        }
        Ok(frames)
    }

    /// Notes that a USERS request is about to go out.
    pub fn asking(&mut self, purpose: Purpose) {
        self.asks.push_back(Ask {
            purpose,
            deadline: Instant::now() + USERS_TIMEOUT,
        });
    }

    /// Whether an answer is still due.
    pub fn waiting(&self) -> bool {
        !self.echoes.is_empty() || !self.asks.is_empty()
    }

    /// Whether a USERS request sent to settle before leaving is still unanswered.
    pub fn settling_before_leaving(&self) -> bool {
        self.asks.iter().any(|ask| ask.purpose == Purpose::Settle)
    }

    /// When the client must next wake up if nothing arrives: the next thing waited for
    /// runs out of time, or an ACK falls due.
    pub fn wake_at(&self) -> Option<Instant> {
        [self.next_deadline(), self.ack_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the next thing waited for runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        let echo = self.echoes.front().map(|sent| sent.deadline);
        let ask = self.asks.front().map(|ask| ask.deadline);
        let settle = self.settling.front().map(|line| line.deadline);
        [echo, ask, settle, self.joiner.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Says which answers did not come by `now`, and stops waiting for them; shows what
    /// waited long enough.
    pub fn expire(&mut self, now: Instant) {
        while let Some(sent) = self.echoes.front() {
            if sent.deadline > now {
                break;
            }
            let sent = self.echoes.pop_front().expect("looked at it");
            if let Some(pending) = self.pending.remove(&sent.message) {
                self.echoes.retain(|other| other.message != sent.message);
                terminal::line(&say::no_echo(
                    visible(pending.to.as_bytes()),
                    ECHO_TIMEOUT.as_secs(),
                ));
            }
            self.failed = true;
        }
        while let Some(ask) = self.asks.front() {
            if ask.deadline > now {
                break;
            }
            let ask = self.asks.pop_front().expect("looked at it");
            match ask.purpose {
                Purpose::Who => terminal::line(&say::no_users_answer(USERS_TIMEOUT.as_secs())),
                Purpose::RoomCount { line: Some(line) } => {
                    terminal::line(&say::with_status(&line, say::room_without_count()));
                }
                // The echo has not come either: its own wait says so.
                Purpose::RoomCount { line: None } | Purpose::Settle => {}
            }
            self.users_unanswered = true;
            self.failed = true;
        }
        for whole in self.joiner.expire(Some(now)) {
            self.show_whole(whole);
        }
        self.flush_settling(Some(now));
        self.show_receipts();
    }

    /// The connection ended: what was waited for on it will not come. Says so for our
    /// messages not yet echoed, and starts the receipts state afresh for the next one.
    pub fn connection_lost(&mut self) {
        self.flush_settling(None);
        for pending in std::mem::take(&mut self.pending).into_values() {
            terminal::line(&say::lost_before_echo(visible(pending.to.as_bytes())));
        }
        self.echoes.clear();
        for ask in std::mem::take(&mut self.asks) {
            if let Purpose::RoomCount { line: Some(line) } = ask.purpose {
                terminal::line(&line);
            }
        }
        self.show_receipts();
        self.acks.reconnected();
    }

    /// Shows everything still held: parts without their end, lines waiting for a mark.
    pub fn finish(&mut self) {
        for whole in self.joiner.expire(None) {
            self.show_whole(whole);
        }
        self.flush_settling(None);
    }

    /// Shows one reply.
    pub fn show(&mut self, reply: &Reply) {
        self.show_reply(reply);
        self.show_receipts();
    }

    /// Shows the receipts held back whose echoes are no longer due, in their order.
    fn show_receipts(&mut self) {
        let due = |name: &[u8], echoes: &VecDeque<Sent>| {
            echoes.iter().any(|sent| sent.receiver.as_bytes() == name)
        };
        let (ready, waiting) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition::<Vec<_>, _>(|(_, _, name)| !due(name, &self.echoes));
        self.deferred = waiting;
        for (kind, id, name) in ready {
            self.receipt(kind == Kind::Read, id, &name);
        }
    }

    fn show_reply(&mut self, reply: &Reply) {
        match reply {
            Reply::Chat { flag, message } if message.sender.as_bytes() == self.me.as_bytes() => {
                if !self.take_echo(*flag, 0, message)
                    && message.receiver.as_bytes() == self.me.as_bytes()
                {
                    // The original server writes a message to yourself twice, the echo
                    // and the delivery: the second is a message like any other.
                    self.incoming(message, None);
                }
            }
            Reply::Chat { message, .. } => self.incoming(message, None),
            // On a receipts connection a message with our name is our echo, always:
            // chat-server sends a message to yourself once.
            Reply::Message { flag, id, message }
                if message.sender.as_bytes() == self.me.as_bytes() =>
            {
                self.take_echo(*flag, *id, message);
            }
            Reply::Message { id, message, .. } => self.delivered(*id, message),
            Reply::Receipt { kind, id, name } => {
                self.deferred.push((*kind, *id, name.as_bytes().to_vec()));
            }
            Reply::Users { flag, names } => self.users(*flag, names),
            Reply::Login { flag } => {
                terminal::line(&say::login_reply(&say::describe(*flag)));
            }
            Reply::Other(feedback) => {
                terminal::line(&say::request_refused(
                    feedback.kind,
                    &say::reason(feedback.flag),
                ));
                self.failed = true;
            }
        }
    }

    fn users(&mut self, flag: i32, names: &[String]) {
        let purpose = self.asks.pop_front().map(|ask| ask.purpose);
        if flag != Flag::Ok.to_wire() {
            terminal::line(&say::who_refused(&say::reason(flag)));
            self.failed = true;
            return;
        }
        match purpose {
            Some(Purpose::RoomCount { line: Some(line) }) => {
                self.flush_settling(None);
                let others = names.iter().filter(|name| **name != self.me).count();
                terminal::line(&say::with_status(&line, &say::room_count(others)));
            }
            Some(Purpose::RoomCount { line: None } | Purpose::Settle) => {}
            Some(Purpose::Who) | None => {
                self.flush_settling(None);
                let names: Vec<String> = names.iter().map(|name| visible_str(name)).collect();
                terminal::line(&say::online(&names));
            }
        }
    }

    /// Takes the echo of one of our parts; whether one was due for it. An echo that came
    /// after its wait ran out shows as a message of its own.
    fn take_echo(&mut self, flag: i32, id: u64, message: &ChatMessage) -> bool {
        let due = self
            .echoes
            .iter()
            .position(|sent| sent.receiver == message.receiver && sent.text == message.text);
        let Some(index) = due else {
            if message.receiver.as_bytes() != self.me.as_bytes() || self.receipts {
                let late = Pending {
                    to: message.receiver,
                    text: String::from_utf8_lossy(message.text.as_bytes()).into_owned(),
                    parts: 1,
                    echoed: 1,
                    stored: false,
                    refused: None,
                    accepted: 0,
                    last_id: id,
                };
                self.echoed(late, flag, id);
            }
            return false;
        };
        let sent = self.echoes.remove(index).expect("found it");
        if let Some(mut pending) = self.pending.remove(&sent.message) {
            pending.echoed += 1;
            if pending.echoed < pending.parts {
                record(&mut pending, flag, id);
                self.pending.insert(sent.message, pending);
            } else {
                self.echoed(pending, flag, id);
            }
        }
        true
    }

    /// Every part of one of our messages is echoed (the last with `flag` and `id`).
    fn echoed(&mut self, mut pending: Pending, flag: i32, id: u64) {
        record(&mut pending, flag, id);
        let to = pending.to;
        let room = to.as_bytes() == ROOM.as_bytes();
        let time = self.clock.at(pending.last_id);
        let text = visible_str(&pending.text);
        let line = if room {
            say::own_room_line(&time, &visible_str(&self.me), &text)
        } else {
            say::own_line(
                &time,
                &visible_str(&self.me),
                &visible(to.as_bytes()),
                &text,
            )
        };
        if let Some(flag) = pending.refused {
            self.flush_settling(None);
            let mut status = self.refusal(flag, &to);
            if pending.parts > 1 {
                status = say::with_status(
                    &status,
                    &say::parts_accepted(pending.accepted, pending.parts),
                );
            }
            terminal::line(&say::with_status(&line, &status));
            self.failed = true;
            return;
        }
        if room {
            // Its count comes with the USERS answer that follows it.
            let probe = self.asks.iter_mut().find_map(|ask| match &mut ask.purpose {
                Purpose::RoomCount { line: slot @ None } => Some(slot),
                _ => None,
            });
            if let Some(slot) = probe {
                *slot = Some(line);
                return;
            }
            self.flush_settling(None);
            if self.users_unanswered {
                terminal::line(&say::with_status(&line, say::room_without_count()));
                self.failed = true;
            } else {
                terminal::line(&say::with_status(&line, &say::said_to_room()));
            }
            return;
        }
        let mark = if pending.stored {
            Mark::Stored
        } else {
            Mark::Sent
        };
        let settling = Settling {
            to,
            id: pending.last_id,
            line,
            parts: pending.parts,
            deadline: Instant::now() + MARK_SETTLE,
        };
        if self.receipts && self.settles_marks && mark == Mark::Sent && settling.id != 0 {
            self.settling.push_back(settling);
        } else {
            self.flush_settling(None);
            self.show_own(settling, mark);
        }
    }

    /// Shows our message's line with the furthest mark it has reached.
    fn show_own(&mut self, own: Settling, base: Mark) {
        let mark = self
            .progress
            .mark_of(own.to.as_bytes(), own.id)
            .map_or(base, |reached| reached.max(base));
        terminal::line(&say::with_status(&own.line, &say::mark(mark, own.parts)));
        if own.id != 0 && mark != Mark::Read {
            self.shown_marks
                .entry(own.to.as_bytes().to_vec())
                .or_default()
                .insert(own.id, mark);
        }
    }

    /// Shows the lines whose moment of waiting is over by `now` (all with `None`).
    fn flush_settling(&mut self, now: Option<Instant>) {
        while let Some(own) = self.settling.front() {
            if now.is_some_and(|now| own.deadline > now) {
                break;
            }
            let own = self.settling.pop_front().expect("looked at it");
            self.show_own(own, Mark::Sent);
        }
    }

    /// What a refusal of our message to `to` says.
    fn refusal(&self, flag: i32, to: &Name) -> String {
        let shown = visible(to.as_bytes());
        match Flag::from_wire(flag) {
            // With receipts the server is chat-server, which stores for offline users:
            // -1 means nobody has that name. Elsewhere (the original, minimal) it may
            // also mean that they are offline.
            Some(Flag::Rejected) if self.receipts => say::no_such_user(shown),
            Some(Flag::Rejected) => say::not_online_or_unknown(shown),
            Some(Flag::MailboxFull) => say::mailbox_full(shown),
            Some(Flag::NotStored) => say::not_stored(shown),
            Some(_) => say::not_sent(&say::reason(flag)),
            None => say::not_sent_unknown(flag),
        }
    }

    /// A RECEIVED or READ receipt for our messages to `name` up to `id`.
    fn receipt(&mut self, read: bool, id: u64, name: &[u8]) {
        let Some(mark) = self.progress.receipt(name, read, id) else {
            return;
        };
        // Lines still waiting for their mark show it now (with those before them).
        let last_covered = self
            .settling
            .iter()
            .rposition(|own| own.to.as_bytes() == name && own.id <= id);
        if let Some(last) = last_covered {
            for own in self.settling.drain(..=last).collect::<Vec<_>>() {
                self.show_own(own, Mark::Sent);
            }
        }
        // A line of its own only if a line already shown says less.
        let Some(shown) = self.shown_marks.get_mut(name) else {
            return;
        };
        let behind = shown.range(..=id).any(|(_, shown)| *shown < mark);
        if !behind {
            return;
        }
        let latest = shown.range(..=id).next_back().map(|(id, _)| *id);
        if mark == Mark::Read {
            shown.retain(|shown_id, _| *shown_id > id);
        } else {
            for (_, shown) in shown.range_mut(..=id) {
                *shown = mark;
            }
        }
        let time = self.clock.at(latest.unwrap_or(id));
        terminal::line(&say::mark_line(&visible(name), mark, &time));
    }

    /// A delivery on a receipts connection: shown once, then acknowledged, and
    /// (interactive) marked read once the person types.
    fn delivered(&mut self, id: u64, message: &ChatMessage) {
        self.deliveries += 1;
        if self.acks.closed {
            self.held_back += 1;
            return;
        }
        if !self.acks.delivered(id) {
            return; // delivered again after a lost connection: shown already
        }
        self.incoming(message, Some(id));
    }

    /// Someone's message (or part of one) to us or to the room.
    fn incoming(&mut self, message: &ChatMessage, id: Option<u64>) {
        let room = message.receiver.as_bytes() == ROOM.as_bytes();
        if let Some(whole) = self.joiner.take(
            message.sender.as_bytes(),
            room,
            message.text.as_bytes(),
            id,
            Instant::now(),
        ) {
            self.show_whole(whole);
        }
    }

    /// Shows someone's whole message, with the time it was sent (`first_id`, on a
    /// receipts connection) or else the time it arrived.
    fn show_whole(&mut self, whole: Whole) {
        self.flush_settling(None);
        let waited = whole
            .first_id
            .and_then(message_id::sent_at_ms)
            .is_some_and(|sent| sent < self.login_ms);
        if waited && !self.in_away_block {
            terminal::line(&say::while_you_were_away());
        }
        self.in_away_block = waited;
        let sender = if whole.sender.is_empty() {
            // A client that leaves the field to the server, through the original.
            say::sender_not_given()
        } else {
            visible(&whole.sender)
        };
        let time = match whole.first_id {
            Some(id) => self.clock.at(id),
            None => self.clock.now(),
        };
        let mut line = format!(
            "[{time}] {}{sender}: {}",
            if whole.room { say::room_tag() } else { "" },
            visible(&whole.text)
        );
        if !whole.complete {
            line = say::with_status(&line, &say::incomplete());
        }
        terminal::line(&line);
        if whole.sender.is_empty() {
            return;
        }
        // Shown: the next line typed tells the sender it was read (a private message,
        // on a receipts connection).
        if let (true, false, Some(id)) = (self.sends_reads, whole.room, whole.last_id)
            && let Ok(sender) = Name::from_bytes(&whole.sender)
        {
            self.acks.shown_from(&sender, id);
        }
        let name = String::from_utf8_lossy(&whole.sender).into_owned();
        self.last_sender = Some(name.clone());
        if self.adopt_partner && self.partner.is_none() && !whole.room && name != self.me {
            terminal::line(&say::partner_adopted(&sender));
            terminal::set_prompt(say::prompt(Some(&sender)));
            self.partner = Some(name);
        }
    }
}

/// Notes one part's echo in its message.
fn record(pending: &mut Pending, flag: i32, id: u64) {
    match Flag::from_wire(flag) {
        Some(Flag::Ok) => pending.accepted += 1,
        Some(Flag::Queued) => {
            pending.accepted += 1;
            pending.stored = true;
        }
        _ => {
            pending.refused.get_or_insert(flag);
        }
    }
    if id != 0 {
        pending.last_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(me: &str) -> Screen {
        let mut screen = Screen::new(me, Clock { offset_secs: 0 });
        screen.adopt_partner = true;
        screen
    }

    fn chat_reply(from: &str, to: &str, text: &str) -> Reply {
        Reply::Chat {
            flag: Flag::Ok.to_wire(),
            message: ChatMessage {
                sender: Name::new(from).unwrap(),
                receiver: Name::new(to).unwrap(),
                text: MessageText::new(text).unwrap(),
            },
        }
    }

    fn message_reply(flag: Flag, id: u64, from: &str, to: &str, text: &str) -> Reply {
        Reply::Message {
            flag: flag.to_wire(),
            id,
            message: ChatMessage {
                sender: Name::new(from).unwrap(),
                receiver: Name::new(to).unwrap(),
                text: MessageText::new(text).unwrap(),
            },
        }
    }

    /// An id of now, the way the server gives them.
    fn id_now(n: u64) -> u64 {
        message_id::first_of_ms(message_id::now_ms()) + n
    }

    #[test]
    fn an_echo_is_found_by_its_sender_whether_it_comes_before_or_after_others() {
        let mut screen = screen("1001");
        let frames = screen.send("1002", "hi").unwrap();
        assert_eq!(frames.len(), 1);
        screen.show(&chat_reply("1002", "1001", "crossing"));
        assert!(screen.waiting(), "another's message is not the echo");
        screen.show(&chat_reply("1001", "1002", "hi"));
        assert!(!screen.waiting() && !screen.failed);
    }

    #[test]
    fn a_long_message_waits_for_every_part_and_its_parts_are_shown_as_one() {
        let mut screen = screen("1001");
        screen.receipts = true;
        let text = "长".repeat(60);
        let frames = screen.send("1002", &text).unwrap();
        assert_eq!(frames.len(), 2, "180 bytes go in two parts");
        let parts = parts::split(&text);
        screen.show(&message_reply(
            Flag::Ok,
            id_now(1),
            "1001",
            "1002",
            &parts[0],
        ));
        assert!(screen.waiting(), "one part is still due");
        screen.show(&message_reply(
            Flag::Ok,
            id_now(2),
            "1001",
            "1002",
            &parts[1],
        ));
        assert!(!screen.waiting() && !screen.failed);
        // Incoming parts are held until the last, and not acknowledged before.
        screen.show(&message_reply(
            Flag::Ok,
            id_now(3),
            "1002",
            "1001",
            &parts[0],
        ));
        assert_eq!(screen.partner, None, "nothing shown yet");
        assert!(!screen.ack_pending());
        screen.show(&message_reply(
            Flag::Ok,
            id_now(4),
            "1002",
            "1001",
            &parts[1],
        ));
        assert_eq!(screen.partner.as_deref(), Some("1002"));
        assert!(screen.ack_pending());
    }

    #[test]
    fn the_first_to_write_becomes_the_partner_and_only_the_first() {
        let mut screen = screen("玛卡巴卡");
        screen.show(&chat_reply("1001", ROOM, "in the room"));
        assert_eq!(screen.partner, None, "a room message picks no partner");
        screen.show(&chat_reply("似末", "玛卡巴卡", "你好"));
        assert_eq!(screen.partner.as_deref(), Some("似末"));
        screen.show(&chat_reply("1002", "玛卡巴卡", "me too"));
        assert_eq!(screen.partner.as_deref(), Some("似末"));
        assert_eq!(screen.last_sender.as_deref(), Some("1002"));
    }

    #[test]
    fn answers_that_never_come_are_given_up_at_their_deadline() {
        let mut screen = screen("1001");
        let frames = screen.send(ROOM, "anyone?").unwrap();
        assert_eq!(frames.len(), 2, "a room message asks who heard it");
        screen.asking(Purpose::Who);
        screen.expire(Instant::now());
        assert!(screen.waiting(), "nothing is due yet");
        screen.expire(Instant::now() + ECHO_TIMEOUT);
        assert!(!screen.waiting() && screen.failed && screen.users_unanswered);
        let again = screen.send(ROOM, "anyone?").unwrap();
        assert_eq!(again.len(), 1, "USERS is not asked again");
    }

    #[test]
    fn our_echo_on_a_receipts_connection_is_no_delivery() {
        let mut screen = screen("1001");
        screen.receipts = true;
        screen.send("1001", "to myself").unwrap();
        screen.show(&message_reply(Flag::Ok, 7, "1001", "1001", "to myself"));
        assert!(!screen.waiting() && !screen.ack_pending());
    }

    #[test]
    fn a_receipt_that_overtakes_its_echo_waits_for_it_and_a_settling_line_takes_it() {
        let mut screen = screen("1001");
        screen.receipts = true;
        screen.settles_marks = true;
        screen.send("1002", "hi").unwrap();
        let id = id_now(9);
        screen.show(&Reply::Receipt {
            kind: Kind::Received,
            id,
            name: "1002".to_string(),
        });
        assert_eq!(screen.deferred.len(), 1, "the echo is still due");
        screen.show(&message_reply(Flag::Ok, id, "1001", "1002", "hi"));
        assert!(screen.deferred.is_empty());
        assert!(screen.settling.is_empty(), "shown at once, delivered");
        assert!(
            screen.shown_marks[&b"1002".to_vec()][&id] == Mark::Delivered,
            "one line, marked delivered"
        );
        // READ moves it on: one line of its own, and then nothing is behind.
        screen.receipt(true, id, b"1002");
        assert!(screen.shown_marks[&b"1002".to_vec()].is_empty());
    }

    #[test]
    fn a_message_sent_before_the_login_waited_for_us() {
        let mut screen = screen("1001");
        screen.receipts = true;
        screen.login_ms = message_id::now_ms();
        let old = message_id::first_of_ms(screen.login_ms - 5_000);
        screen.show(&message_reply(Flag::Ok, old, "1002", "1001", "kept"));
        assert!(screen.in_away_block);
        screen.show(&message_reply(
            Flag::Ok,
            id_now(1) + (1 << 30),
            "1002",
            "1001",
            "live",
        ));
        assert!(!screen.in_away_block);
    }
}
