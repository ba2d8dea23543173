//! Frames as a learner reads them: each request and reply decoded into the article's
//! structs (`HEAD`, `USERINFO`, `CHATMSG`, `FEEDBACK`) and dumped as bytes, for
//! `chat-client --trace` (docs/PROTOCOL.md §1).
//!
//! The decoded line names every type and flag, the extensions and unknown values too,
//! and says when a text field carries bytes after its NUL (the stray memory an original
//! client sends along) or fills its field with no NUL at all. A password never appears:
//! the decoded line gives only its length, and the dump masks its whole field, padding
//! included, since what follows a password's NUL may be the rest of an older one.
//!
//! The receipts extension's frames (docs/PROTOCOL.md §3) are decoded too, in both
//! directions: a message id as the number on the wire and as what it stands for (the
//! UTC millisecond the server accepted the message in, and `#n`, its place among the
//! receiver's messages of that millisecond, from 0; an id of the first receipts server,
//! below [`FIRST_MILLISECOND_ID`], as the microsecond it was), names as text.
//!
//! Nothing here does I/O: the functions take a whole frame's bytes and return text.

use crate::message_id::{FIRST_MILLISECOND_ID, SEQUENCE_BITS, sent_at_ms};
use crate::protocol::{
    ACK_BODY_LEN, CHAT_BODY_LEN, FEEDBACK_LEN, Feedback, Flag, HEADER_LEN, Header, ID_LEN, Kind,
    LOGIN_BODY_LEN, MESSAGE_BODY_LEN, NAME_LEN, RECEIPT_BODY_LEN, TEXT_LEN,
};
use std::fmt::Write;
use std::ops::Range;

/// The mark that starts a request's decoded line: bytes going to the server.
pub const SENT: &str = "→";
/// The mark that starts a reply's decoded line: bytes coming from the server.
pub const RECEIVED: &str = "←";
/// Bytes per line of the dump, in two groups of half as many, as `hexdump -C` shows them.
const BYTES_PER_LINE: usize = 16;
const GROUP: usize = BYTES_PER_LINE / 2;
/// What a masked byte looks like in the dump: in the hex columns, and in the text column.
const MASKED_HEX: &str = "**";
const MASKED_CHAR: char = '*';
/// The line that stands for lines like the one above it.
const REPEATED: &str = "  *\n";
/// The printable ASCII range, shown as itself in the dump's text column.
const PRINTABLE: Range<u8> = 0x20..0x7f;
const MICROS_PER_SEC: u64 = 1_000_000;
const MILLIS_PER_SEC: u64 = 1_000;
/// The low bits of a message id: its sequence within its millisecond.
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// A request the client sends (a `HEAD` and its body), decoded, then dumped with the
/// password masked.
pub fn request(frame: &[u8]) -> String {
    let (line, masked) = describe_request(frame);
    format!("{SENT} {line}\n{}", hex_dump(frame, masked))
}

/// A reply the server sends (a `FEEDBACK` and its body), decoded, then dumped.
pub fn reply(frame: &[u8]) -> String {
    format!(
        "{RECEIVED} {}\n{}",
        describe_reply(frame),
        hex_dump(frame, 0..0)
    )
}

/// The decoded line of a request, and the byte range the dump must mask.
fn describe_request(frame: &[u8]) -> (String, Range<usize>) {
    let Some(head) = frame.first_chunk::<HEADER_LEN>().map(Header::decode) else {
        return (format!("{} bytes, shorter than a HEAD", frame.len()), 0..0);
    };
    let body = &frame[HEADER_LEN..];
    let mut line = format!(
        "HEAD{{type {}, length {}}}",
        kind_name(head.kind),
        head.length
    );
    let mut masked = 0..0;
    match head.kind {
        Kind::Login => {
            // Whatever its length, everything after the name is the password's.
            let password = HEADER_LEN + NAME_LEN.min(body.len())..frame.len();
            masked = password.clone();
            match body.first_chunk::<LOGIN_BODY_LEN>() {
                Some(user) if body.len() == LOGIN_BODY_LEN => {
                    let value_len = user[NAME_LEN..]
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(NAME_LEN);
                    let _ = write!(
                        line,
                        "  USERINFO{{name {}, password ({value_len} bytes, hidden)}}",
                        field(&user[..NAME_LEN])
                    );
                }
                _ => {
                    let _ = write!(line, "  {} bytes of body, not a USERINFO", body.len());
                }
            }
        }
        Kind::Chat => line.push_str(&chat_body(body)),
        Kind::Ack if body.len() == ACK_BODY_LEN => {
            let _ = write!(line, "  id {}", id(body));
        }
        Kind::Read => line.push_str(&receipt_body(body)),
        Kind::Users
        | Kind::Receipts
        | Kind::Message
        | Kind::Ack
        | Kind::Received
        | Kind::Unknown(_) => line.push_str(&other_body(body)),
    }
    (line, masked)
}

/// The decoded line of a reply.
fn describe_reply(frame: &[u8]) -> String {
    let Some(feedback) = frame.first_chunk::<FEEDBACK_LEN>().map(Feedback::decode) else {
        return format!("{} bytes, shorter than a FEEDBACK", frame.len());
    };
    let body = &frame[FEEDBACK_LEN..];
    let mut line = format!(
        "FEEDBACK{{type {}, length {}, flag {}}}",
        kind_name(feedback.kind),
        feedback.length,
        flag_name(feedback.flag)
    );
    match feedback.kind {
        // The LOGIN feedback's length says 40, but no body follows (PROTOCOL.md §1).
        Kind::Login if body.is_empty() => line.push_str("  (no body: the 40 is a quirk)"),
        Kind::Chat => line.push_str(&chat_body(body)),
        Kind::Users if !body.is_empty() && body.len().is_multiple_of(NAME_LEN) => {
            let names: Vec<String> = body.chunks_exact(NAME_LEN).map(field).collect();
            let _ = write!(line, "  names[{}]{{{}}}", names.len(), names.join(", "));
        }
        Kind::Message if body.len() == MESSAGE_BODY_LEN => {
            let (message_id, chat) = body.split_at(ID_LEN);
            let _ = write!(line, "  id {}{}", id(message_id), chat_body(chat));
        }
        Kind::Received | Kind::Read if !body.is_empty() => line.push_str(&receipt_body(body)),
        _ => line.push_str(&other_body(body)),
    }
    line
}

/// `  id …, name …`: the body of READ and RECEIVED, or what it is instead.
fn receipt_body(body: &[u8]) -> String {
    if body.len() != RECEIPT_BODY_LEN {
        return format!("  {} bytes of body, not an id and a name", body.len());
    }
    let (message_id, name) = body.split_at(ID_LEN);
    format!("  id {}, name {}", id(message_id), field(name))
}

/// A message id (8 bytes, little-endian) as its number and what it stands for:
/// `(2026-12-07 08:25:09.123 UTC #3)`, the millisecond and the sequence in it, or for an
/// id of the first receipts server `(2026-12-01 08:25:09.123456 UTC)`, its microsecond.
fn id(bytes: &[u8]) -> String {
    let id = u64::from_le_bytes(bytes.try_into().expect("an id is 8 bytes"));
    match sent_at_ms(id) {
        None => "0 (none: a message not accepted)".to_string(),
        Some(ms) if id >= FIRST_MILLISECOND_ID => {
            format!("{id} ({} #{})", utc_time_ms(ms), id & SEQUENCE_MASK)
        }
        Some(_) => format!("{id} ({})", utc_time(id)),
    }
}

/// Microseconds since 1970 as `YYYY-MM-DD HH:MM:SS.ffffff UTC`.
pub fn utc_time(micros: u64) -> String {
    format!(
        "{}.{:06} UTC",
        utc_second(micros / MICROS_PER_SEC),
        micros % MICROS_PER_SEC
    )
}

/// Milliseconds since 1970 as `YYYY-MM-DD HH:MM:SS.fff UTC`.
pub fn utc_time_ms(millis: u64) -> String {
    format!(
        "{}.{:03} UTC",
        utc_second(millis / MILLIS_PER_SEC),
        millis % MILLIS_PER_SEC
    )
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM:SS`.
fn utc_second(secs: u64) -> String {
    let (days, of_day) = (secs / SECONDS_PER_DAY, secs % SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(i64::try_from(days).expect("u64 / 86400 fits"));
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
    )
}

/// The proleptic Gregorian date (year, month, day) of a day counted from 1970-01-01:
/// Howard Hinnant's `civil_from_days`, since std has no calendar.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March is 0: leap days come last
    let day = u32::try_from(day_of_year - (153 * shifted_month + 2) / 5 + 1).expect("1..=31");
    let month = u32::try_from(if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    })
    .expect("1..=12");
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `  CHATMSG{sender …, receiver …, message …}`, or what the body is instead.
fn chat_body(body: &[u8]) -> String {
    if body.len() != CHAT_BODY_LEN {
        return format!("  {} bytes of body, not a CHATMSG", body.len());
    }
    let (sender, rest) = body.split_at(NAME_LEN);
    let (receiver, text) = rest.split_at(NAME_LEN);
    debug_assert_eq!(text.len(), TEXT_LEN);
    format!(
        "  CHATMSG{{sender {}, receiver {}, message {}}}",
        field(sender),
        field(receiver),
        field(text)
    )
}

/// A body no struct of the protocol describes: only its size.
fn other_body(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!("  {} bytes of body", body.len())
    }
}

/// A type by number and name: `1 LOGIN`, `3 USERS (extension)`, `9 unknown`.
fn kind_name(kind: Kind) -> String {
    let name = match kind {
        Kind::Login => "LOGIN",
        Kind::Chat => "CHAT",
        Kind::Users => "USERS (extension)",
        Kind::Receipts => "RECEIPTS (extension)",
        Kind::Message => "MESSAGE (extension)",
        Kind::Ack => "ACK (extension)",
        Kind::Received => "RECEIVED (extension)",
        Kind::Read => "READ (extension)",
        Kind::Unknown(_) => "unknown",
    };
    format!("{} {name}", kind.to_wire())
}

/// A flag by number and its name in docs/PROTOCOL.md §2: `1 OK`, `-7 MAILBOX_FULL`.
pub fn flag_name(flag: i32) -> String {
    let name = match Flag::from_wire(flag) {
        Some(Flag::Ok) => "OK",
        Some(Flag::Queued) => "QUEUED",
        Some(Flag::Rejected) => "REJECTED",
        Some(Flag::NotLoggedIn) => "NOT_LOGGED_IN",
        Some(Flag::Malformed) => "MALFORMED",
        Some(Flag::Unsupported) => "UNSUPPORTED",
        Some(Flag::Busy) => "BUSY",
        Some(Flag::TooManyAttempts) => "TOO_MANY_ATTEMPTS",
        Some(Flag::MailboxFull) => "MAILBOX_FULL",
        Some(Flag::NotStored) => "NOT_STORED",
        None => "unknown",
    };
    format!("{flag} {name}")
}

/// A text field's value, quoted, and what its bytes after the value hold if that is
/// not plain zero padding.
fn field(bytes: &[u8]) -> String {
    let nul = bytes.iter().position(|&b| b == 0);
    let value = &bytes[..nul.unwrap_or(bytes.len())];
    let mut out = format!("{:?}", String::from_utf8_lossy(value));
    match nul {
        None => out.push_str(" (no NUL: fills the field)"),
        Some(nul) => {
            let stray = bytes[nul + 1..].iter().filter(|&&b| b != 0).count();
            if stray > 0 {
                let after = bytes.len() - nul - 1;
                let _ = write!(
                    out,
                    " (+{after} bytes after its NUL, {stray} not zero: ignored)"
                );
            }
        }
    }
    out
}

/// `bytes` as `hexdump -C` would show them, indented, one line per 16 bytes (a run of
/// lines like the one before them shown as one `*`), with the bytes in `masked` shown
/// as `**` and `*`.
pub fn hex_dump(bytes: &[u8], masked: Range<usize>) -> String {
    let mut out = String::new();
    let lines = bytes.len().div_ceil(BYTES_PER_LINE);
    let mut previous: Option<&[u8]> = None;
    let mut skipping = false;
    for (line, chunk) in bytes.chunks(BYTES_PER_LINE).enumerate() {
        let start = line * BYTES_PER_LINE;
        // A line the same as the one before is one `*`, as in `hexdump -C`: a CHAT
        // frame is mostly zero padding. Never the last line, which shows where the
        // frame ends, nor a line with masked bytes.
        let unmasked = masked.end <= start || masked.start >= start + chunk.len();
        if previous == Some(chunk) && unmasked && line + 1 < lines {
            if !skipping {
                out.push_str(REPEATED);
                skipping = true;
            }
            continue;
        }
        previous = unmasked.then_some(chunk);
        skipping = false;
        let _ = write!(out, "  {start:04x}  ");
        let mut text = String::new();
        for column in 0..BYTES_PER_LINE {
            if column == GROUP {
                out.push(' ');
            }
            match chunk.get(column) {
                Some(_) if masked.contains(&(start + column)) => {
                    out.push_str(MASKED_HEX);
                    text.push(MASKED_CHAR);
                }
                Some(&byte) => {
                    let _ = write!(out, "{byte:02x}");
                    text.push(if PRINTABLE.contains(&byte) {
                        char::from(byte)
                    } else {
                        '.'
                    });
                }
                None => out.push_str("  "),
            }
            out.push(' ');
        }
        let _ = writeln!(out, " {text}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{self, ChatMessage, Credentials, MessageText, Name, Password};

    fn login(name: &str, password: &str) -> Vec<u8> {
        protocol::login_request(&Credentials {
            name: Name::new(name).unwrap(),
            password: Password::new(password).unwrap(),
        })
    }

    #[test]
    fn a_login_request_shows_the_name_and_only_the_passwords_length() {
        let shown = request(&login("似末", "s3cret"));
        let first = shown.lines().next().unwrap();
        assert_eq!(
            first,
            "→ HEAD{type 1 LOGIN, length 40}  USERINFO{name \"似末\", password (6 bytes, hidden)}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        // s3cret in hex: 73 33 63 72 65 74.
        assert!(!shown.contains("73 33 63"), "{shown}");
        assert!(shown.contains("** ** **"), "{shown}");
    }

    #[test]
    fn the_dump_is_laid_out_as_hexdump_c() {
        let feedback = Feedback::login(Flag::Ok).to_bytes();
        assert_eq!(
            reply(&feedback),
            "← FEEDBACK{type 1 LOGIN, length 40, flag 1 OK}  (no body: the 40 is a quirk)\n\
             \x20 0000  01 00 00 00 28 00 00 00  01 00 00 00              ....(.......\n"
        );
        let dump = hex_dump(&login("似末", "123456"), 0..0);
        assert_eq!(
            dump.lines().next().unwrap(),
            "  0000  01 00 00 00 28 00 00 00  e4 bc bc e6 9c ab 00 00  ....(..........."
        );
        assert_eq!(dump.lines().count(), 3, "48 bytes are three lines");
    }

    #[test]
    fn every_flag_and_type_is_named_the_unknown_ones_too() {
        let names: Vec<String> = [1, 0, -1, -2, -3, -4, -5, -6, -7, -8, 2]
            .into_iter()
            .map(flag_name)
            .collect();
        assert_eq!(
            names,
            [
                "1 OK",
                "0 QUEUED",
                "-1 REJECTED",
                "-2 NOT_LOGGED_IN",
                "-3 MALFORMED",
                "-4 UNSUPPORTED",
                "-5 BUSY",
                "-6 TOO_MANY_ATTEMPTS",
                "-7 MAILBOX_FULL",
                "-8 NOT_STORED",
                "2 unknown"
            ]
        );
        let users = request(&protocol::users_request());
        assert!(
            users.starts_with("→ HEAD{type 3 USERS (extension), length 0}\n"),
            "{users}"
        );
        let unknown = Feedback {
            kind: Kind::Unknown(9),
            length: 0,
            flag: Flag::Unsupported.to_wire(),
        };
        assert!(
            reply(&unknown.to_bytes())
                .starts_with("← FEEDBACK{type 9 unknown, length 0, flag -4 UNSUPPORTED}\n")
        );
    }

    #[test]
    fn a_chat_frame_shows_its_three_fields_and_marks_bytes_after_a_nul() {
        let message = ChatMessage {
            sender: Name::new("1001").unwrap(),
            receiver: Name::new("玛卡巴卡").unwrap(),
            text: MessageText::new("你好").unwrap(),
        };
        let mut frame = message.to_frame(Flag::Queued).to_vec();
        let shown = reply(&frame);
        assert!(
            shown.starts_with(
                "← FEEDBACK{type 2 CHAT, length 140, flag 0 QUEUED}  \
                 CHATMSG{sender \"1001\", receiver \"玛卡巴卡\", message \"你好\"}\n"
            ),
            "{shown}"
        );
        // The decoded line and 152 bytes in ten lines, of which the four of zero
        // padding that repeat the one before them are one `*`.
        assert_eq!(shown.lines().count(), 1 + 10 - 4 + 1, "{shown}");
        assert!(shown.contains("\n  *\n  0090  "), "{shown}");
        // Stray memory after the sender's NUL, as the original client sends it.
        frame[FEEDBACK_LEN + 10] = 0xAA;
        frame[FEEDBACK_LEN + 11] = 0xBB;
        assert!(
            reply(&frame)
                .contains("sender \"1001\" (+15 bytes after its NUL, 2 not zero: ignored)")
        );
    }

    #[test]
    fn a_field_without_a_nul_and_a_users_reply_are_decoded() {
        let mut frame = Feedback::new(Kind::Users, 2 * NAME_LEN, Flag::Ok)
            .to_bytes()
            .to_vec();
        frame.extend_from_slice(b"abcdefghijklmnopqrst");
        frame.extend_from_slice(Name::new("1002").unwrap().field());
        assert!(reply(&frame).starts_with(
            "← FEEDBACK{type 3 USERS (extension), length 40, flag 1 OK}  \
             names[2]{\"abcdefghijklmnopqrst\" (no NUL: fills the field), \"1002\"}\n"
        ));
    }

    /// 2026-12-07 08:25:09.123 UTC, the receiver's fourth message (`#3`) of that
    /// millisecond.
    const ID: u64 = 1_796_631_909_123 << SEQUENCE_BITS | 3;
    /// How [`ID`] is shown.
    const SHOWN_ID: &str = "1883905100740558851 (2026-12-07 08:25:09.123 UTC #3)";
    /// An id of the first receipts server: 2026-12-01 08:25:09.123456 UTC, in
    /// microseconds.
    const MICROSECOND_ID: u64 = 1_796_113_509_123_456;

    #[test]
    fn ids_are_shown_as_numbers_with_their_millisecond_and_sequence() {
        let shown = |id: u64| super::id(&id.to_le_bytes());
        assert_eq!(shown(ID), SHOWN_ID);
        let first_of_its_millisecond = ID & !SEQUENCE_MASK;
        assert_eq!(
            shown(first_of_its_millisecond),
            "1883905100740558848 (2026-12-07 08:25:09.123 UTC #0)"
        );
        // The largest sequence a millisecond holds; one more is the next millisecond's.
        assert!(shown(first_of_its_millisecond | SEQUENCE_MASK).ends_with(".123 UTC #1048575)"));
        assert!(shown(ID + SEQUENCE_MASK).ends_with(".124 UTC #2)"));
        assert_eq!(
            shown(FIRST_MILLISECOND_ID),
            "72057594037927936 (1972-03-06 08:44:36.736 UTC #0)",
            "the smallest millisecond id"
        );
        // Below it, the first receipts server's microseconds, shown as before.
        assert_eq!(
            shown(MICROSECOND_ID),
            "1796113509123456 (2026-12-01 08:25:09.123456 UTC)"
        );
        assert_eq!(
            shown(FIRST_MILLISECOND_ID - 1),
            "72057594037927935 (4253-05-31 22:20:37.927935 UTC)",
            "the largest microsecond id"
        );
        assert_eq!(shown(0), "0 (none: a message not accepted)");
    }

    #[test]
    fn times_are_shown_in_utc_to_the_millisecond_or_the_microsecond() {
        assert_eq!(utc_time_ms(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            utc_time_ms(1_796_631_909_123),
            "2026-12-07 08:25:09.123 UTC"
        );
        assert_eq!(utc_time_ms(951_782_400_001), "2000-02-29 00:00:00.001 UTC");
        assert_eq!(
            utc_time_ms(1_767_225_599_999),
            "2025-12-31 23:59:59.999 UTC"
        );
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000000 UTC");
        assert_eq!(utc_time(MICROSECOND_ID), "2026-12-01 08:25:09.123456 UTC");
        // A leap day, and the last microsecond of a year.
        assert_eq!(
            utc_time(951_782_400_000_001),
            "2000-02-29 00:00:00.000001 UTC"
        );
        assert_eq!(
            utc_time(1_767_225_599_999_999),
            "2025-12-31 23:59:59.999999 UTC"
        );
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn the_receipts_frames_are_decoded_in_both_directions() {
        let receipts = request(&protocol::request(Kind::Receipts, &[]));
        assert!(
            receipts.starts_with("→ HEAD{type 4 RECEIPTS (extension), length 0}\n"),
            "{receipts}"
        );
        let on = Feedback::new(Kind::Receipts, 0, Flag::Ok).to_bytes();
        assert!(
            reply(&on)
                .starts_with("← FEEDBACK{type 4 RECEIPTS (extension), length 0, flag 1 OK}\n")
        );

        let ack = request(&protocol::request(Kind::Ack, &ID.to_le_bytes()));
        assert!(
            ack.starts_with(
                "→ HEAD{type 6 ACK (extension), length 8}  \
                 id 1883905100740558851 (2026-12-07 08:25:09.123 UTC #3)\n"
            ),
            "{ack}"
        );
        let short = request(&protocol::request(Kind::Ack, &[1, 2, 3]));
        assert!(short.contains("length 3}  3 bytes of body\n"), "{short}");

        let mut body = ID.to_le_bytes().to_vec();
        body.extend_from_slice(Name::new("玛卡巴卡").unwrap().field());
        let read = request(&protocol::request(Kind::Read, &body));
        assert!(
            read.starts_with(
                "→ HEAD{type 8 READ (extension), length 28}  \
                 id 1883905100740558851 (2026-12-07 08:25:09.123 UTC #3), name \"玛卡巴卡\"\n"
            ),
            "{read}"
        );
        for (kind, name) in [(Kind::Received, "7 RECEIVED"), (Kind::Read, "8 READ")] {
            let mut frame = Feedback::new(kind, RECEIPT_BODY_LEN, Flag::Ok)
                .to_bytes()
                .to_vec();
            frame.extend_from_slice(&body);
            let shown = reply(&frame);
            assert!(
                shown.starts_with(&format!(
                    "← FEEDBACK{{type {name} (extension), length 28, flag 1 OK}}  \
                     id 1883905100740558851 (2026-12-07 08:25:09.123 UTC #3), name \"玛卡巴卡\"\n"
                )),
                "{shown}"
            );
        }
        let refused = Feedback::new(Kind::Read, 0, Flag::Rejected).to_bytes();
        assert_eq!(
            reply(&refused).lines().next().unwrap(),
            "← FEEDBACK{type 8 READ (extension), length 0, flag -1 REJECTED}"
        );

        let message = ChatMessage {
            sender: Name::new("1001").unwrap(),
            receiver: Name::new("1002").unwrap(),
            text: MessageText::new("hi").unwrap(),
        };
        for (id, shown_id) in [
            (ID, SHOWN_ID),
            (
                MICROSECOND_ID,
                "1796113509123456 (2026-12-01 08:25:09.123456 UTC)",
            ),
            (0, "0 (none: a message not accepted)"),
        ] {
            let mut frame = Feedback::new(Kind::Message, MESSAGE_BODY_LEN, Flag::Ok)
                .to_bytes()
                .to_vec();
            frame.extend_from_slice(&id.to_le_bytes());
            frame.extend_from_slice(&message.to_bytes());
            let shown = reply(&frame);
            assert!(
                shown.starts_with(&format!(
                    "← FEEDBACK{{type 5 MESSAGE (extension), length 148, flag 1 OK}}  \
                     id {shown_id}  CHATMSG{{sender \"1001\", receiver \"1002\", message \"hi\"}}\n"
                )),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_login_of_the_wrong_length_still_hides_everything_after_the_name() {
        let mut frame = login("1001", "123456");
        frame.truncate(HEADER_LEN + NAME_LEN + 3);
        let shown = request(&frame);
        assert!(
            shown.contains("23 bytes of body, not a USERINFO"),
            "{shown}"
        );
        assert!(!shown.contains("31 32 33"), "{shown}");
        assert!(!shown.contains("123"), "{shown}");
    }
}
