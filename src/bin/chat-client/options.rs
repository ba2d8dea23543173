//! The command line: `chat-client [--addr HOST:PORT] [--trace] [--no-receipts] NAME
//! [PASSWORD] [--send TO TEXT | --who | --listen]`, parsed by hand (the design allows no
//! argument parser). A mistake is a sentence for the user and exit status 2.

use crate::say;

/// The server `--addr` names by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:12345";

/// What the user asked for on the command line.
pub struct Options {
    /// HOST:PORT of the server.
    pub addr: String,
    /// Who logs in.
    pub name: String,
    /// The password given as an argument, if any.
    pub password: Option<String>,
    /// What to do once logged in.
    pub mode: Mode,
    /// `--trace`: every frame on stderr.
    pub trace: bool,
    /// Whether to ask for receipts (`--no-receipts` says no).
    pub receipts: bool,
}

/// What the client does once logged in.
pub enum Mode {
    /// Chat: read lines typed, show what arrives.
    Interactive,
    /// Send one message (in parts if it is long), say what became of it, exit.
    Send {
        /// The receiver, or `*` for the room.
        to: String,
        /// The whole text.
        text: String,
    },
    /// Say who is online, exit.
    Who,
    /// Show what arrives until the connection ends.
    Listen,
}

/// What the command line asks for.
pub enum Parsed {
    /// Log in and do what the options say.
    Run(Options),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
}

/// The options `args` (without the program's name) ask for, or why they make no sense.
pub fn parse_options(args: Vec<String>) -> Result<Parsed, String> {
    let mut addr = DEFAULT_ADDR.to_string();
    let mut mode = Mode::Interactive;
    let mut trace = false;
    let mut receipts = true;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" | "-V" => return Ok(Parsed::Version),
            "--addr" => {
                addr = args.next().ok_or_else(say::addr_needed)?;
                // A mistake in the address is a usage error (exit 2), found before
                // connecting; a name that does not resolve is found by connecting.
                if addr
                    .rsplit_once(':')
                    .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                {
                    return Err(say::addr_malformed(&addr));
                }
            }
            "--trace" => trace = true,
            "--no-receipts" => receipts = false,
            "--send" => {
                let to = args.next().ok_or_else(say::send_needs)?;
                let text = args.next().ok_or_else(say::send_needs)?;
                mode = Mode::Send { to, text };
            }
            "--who" => mode = Mode::Who,
            "--listen" => mode = Mode::Listen,
            _ if arg.starts_with("--") => return Err(say::unknown_option(&arg)),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let name = positional.next().ok_or_else(say::name_missing)?;
    let password = positional.next();
    if let Some(extra) = positional.next() {
        return Err(say::unexpected_argument(&extra));
    }
    Ok(Parsed::Run(Options {
        addr,
        name,
        password,
        mode,
        trace,
        receipts,
    }))
}
