//! The terminal: the password read without echo, and every line the client prints.
//!
//! Lines go through [`line()`], one lock for both threads, so that they never mix. In the
//! interactive mode on a terminal, each line starts with a carriage return and an
//! erase-line (`\r`, `ESC [K`) and is followed by the prompt: under `rlwrap` (which
//! `make client` uses when it is installed) the line being typed is redrawn below the
//! message, whole; on a bare terminal the typed part is hidden but still there (the
//! terminal's Ctrl-R shows it again) and is sent as typed, never spliced into a message.
//! Piped output gets plain lines. A closed pipe (`chat-client --who | head -1`) ends the
//! process quietly, with the status a shell gives a program killed by SIGPIPE.

use crate::say;
use std::io::{self, BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The conventional status of a program stopped by Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;
/// The status of a program whose output pipe closed (128 + SIGPIPE), as `yes | head`.
pub const EXIT_BROKEN_PIPE: i32 = 141;
/// Back to the start of the line, and erase it.
const CLEAR_LINE: &str = "\r\x1b[K";

/// How lines are printed.
struct Output {
    /// Interactive on a terminal: lines clear the row and the prompt follows them.
    prompting: bool,
    prompt: String,
}

static OUTPUT: Mutex<Output> = Mutex::new(Output {
    prompting: false,
    prompt: String::new(),
});

fn output() -> MutexGuard<'static, Output> {
    OUTPUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Turns the prompt on when both ends are a terminal (the interactive mode), and shows it.
pub fn start_prompting(prompt: String) {
    let mut output = output();
    output.prompting = io::stdin().is_terminal() && io::stdout().is_terminal();
    output.prompt = prompt;
    let text = if output.prompting {
        output.prompt.clone()
    } else {
        String::new()
    };
    write_out(&text);
}

/// Changes the prompt (the partner changed); it shows with the next line or [`prompt`].
pub fn set_prompt(prompt: String) {
    output().prompt = prompt;
}

/// Shows the prompt again, after a typed line was taken.
pub fn prompt() {
    let output = output();
    if output.prompting {
        write_out(&output.prompt);
    }
}

/// Prints one line (which must hold no newline: see [`crate::visible`]).
pub fn line(text: &str) {
    let output = output();
    if output.prompting {
        write_out(&format!("{CLEAR_LINE}{text}\n{}", output.prompt));
    } else {
        write_out(&format!("{text}\n"));
    }
}

/// Prints several lines, as [`line()`] does each.
pub fn lines(text: &str) {
    for text in text.lines() {
        line(text);
    }
}

/// Writes to stdout; a reader that has gone away ends the process quietly.
fn write_out(text: &str) {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(error) = written
        && error.kind() == io::ErrorKind::BrokenPipe
    {
        std::process::exit(EXIT_BROKEN_PIPE);
    }
}

/// Writes a line to stderr; nowhere to say it if that fails.
pub fn error_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Reads a password from the terminal without echo (or a line of piped input).
/// End of input (Ctrl-D) means the user would rather not: an error, not an empty
/// password.
pub fn read_password(stdin: &mut impl BufRead) -> Result<String, String> {
    // Echo goes off before the prompt appears, so nothing typed after it is shown.
    let echo_off = io::stdin().is_terminal() && set_echo(false);
    let _ = write!(io::stderr().lock(), "{}", say::password_prompt());
    let _ = io::stderr().flush();
    let mut line = Vec::new();
    let read = stdin.read_until(b'\n', &mut line);
    if echo_off {
        set_echo(true);
        // The newline the user typed was not echoed either: the next line starts afresh.
        let _ = write!(io::stderr().lock(), "{CLEAR_LINE}");
    }
    match read {
        Ok(0) => Err(say::no_password()),
        Ok(_) => {
            let line = String::from_utf8(line).map_err(|_| say::password_not_utf8())?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
        Err(error) => Err(say::cannot_read_password(error)),
    }
}

/// Turns the terminal's echo on or off with `stty` (the design allows no libc crate for
/// termios). Returns whether it worked. While echo is off, Ctrl-C must turn it back on,
/// or the user's shell is left typing blind.
fn set_echo(on: bool) -> bool {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    if !on {
        HANDLER.call_once(|| {
            let _ = ctrlc::set_handler(|| {
                set_echo(true);
                error_line("");
                std::process::exit(EXIT_INTERRUPTED);
            });
        });
    }
    Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
