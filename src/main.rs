//! `chat-server`: parse the command line, start the server, stop it on Ctrl-C or SIGTERM.
//! Everything else lives in the library.
#![forbid(unsafe_code)]

use chatroom::Server;
use chatroom::config::{self, Command, USAGE};
use std::process::ExitCode;

/// Exit status for a bad command line, users file or data directory.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = config::utf8_args(std::env::args_os().skip(1));
    let command = match args.and_then(config::parse) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("chat-server: {error} (try `chat-server --help`)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let config = match command {
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("chat-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Run(config) => config,
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let server = match Server::bind(&config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("chat-server: {error}");
            let code = u8::try_from(error.exit_code()).expect("exit codes are small");
            return ExitCode::from(code);
        }
    };
    let stopper = server.stopper();
    if let Err(error) = ctrlc::set_handler(move || stopper.stop()) {
        log::warn!("cannot handle Ctrl-C and SIGTERM ({error}); stop the server with SIGKILL");
    }
    server.run();
    ExitCode::SUCCESS
}
