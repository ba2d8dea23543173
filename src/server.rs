//! The listener: accepts connections, enforces the client limit, starts one thread per
//! client, and shuts everything down on request.
//!
//! [`Server::bind`] checks everything that can be wrong before a single client is served
//! (the users file, the data directory, the port). [`Server::run`] is the accept loop;
//! a [`Stopper`] ends it from another thread (the Ctrl-C handler, or a test). Tests use
//! [`Server::spawn`], which runs the loop in a thread and stops it when the returned
//! [`ServerHandle`] is dropped.

use crate::config::SyncPolicy;
use crate::config::{Config, DEFAULT_MAX_CLIENTS, DEFAULT_PORT};
use crate::descriptors;
use crate::mailbox::SYNC_INTERVAL;
use crate::online::Connection;
use crate::protocol::{Feedback, Flag};
use crate::session;
use crate::shared::SharedState;
use crate::slots::{Admission, Slots};
use crate::users::{Accounts, UsersFileError};
use crate::warn_limited;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Stack size of a client thread. A session's buffers are small (its read buffer of
/// 256 bytes lives on this stack; larger ones go to the heap only while a client
/// pipelines), and the stack is what 10,000 clients multiply.
const CLIENT_STACK_SIZE: usize = 128 * 1024;
/// How long to pause after `accept` or a thread spawn fails (out of descriptors, out of
/// threads): long enough not to spin, short enough to recover quickly.
const FAILURE_BACKOFF: Duration = Duration::from_millis(100);
/// How long shutdown waits for client threads to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long the stopper tries to reach the listener to wake its `accept`.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// A bad users file: exit status 2.
    Users(UsersFileError),
    /// An unusable data directory: exit status 2.
    DataDir(String),
    /// The file descriptor limit leaves no room for a single client: exit status 1.
    Descriptors(String),
    /// The address could not be bound (in use, not ours, no permission): exit status 1.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        error: io::Error,
    },
}

impl StartError {
    /// The process exit status docs/PROTOCOL.md §2 gives this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Users(_) | StartError::DataDir(_) => 2,
            StartError::Bind { .. } | StartError::Descriptors(_) => 1,
        }
    }
}

/// Below this port, Linux lets only a privileged process listen (by default: the sysctl
/// `net.ipv4.ip_unprivileged_port_start`).
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

/// Each failure an operator can cause is said as a sentence with what to do about it,
/// not as the system's words (`Cannot assign requested address (os error 99)`).
impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Users(error) => write!(f, "{error}"),
            StartError::DataDir(problem) | StartError::Descriptors(problem) => {
                write!(f, "{problem}")
            }
            StartError::Bind { addr, error } => match error.kind() {
                io::ErrorKind::AddrInUse => write!(
                    f,
                    "cannot listen on {addr}: the port is already in use \
                     (is another server running? choose another with --port)"
                ),
                io::ErrorKind::AddrNotAvailable => write!(
                    f,
                    "cannot listen on {addr}: this machine has no such address \
                     (choose one of its own with --bind, or 0.0.0.0 for all)"
                ),
                io::ErrorKind::PermissionDenied if addr.port() < FIRST_UNPRIVILEGED_PORT => {
                    write!(
                        f,
                        "cannot listen on {addr}: only root (or a program with \
                         CAP_NET_BIND_SERVICE) may listen on a port below \
                         {FIRST_UNPRIVILEGED_PORT} (choose --port {FIRST_UNPRIVILEGED_PORT} \
                         or above, such as the default {DEFAULT_PORT})"
                    )
                }
                io::ErrorKind::PermissionDenied => write!(
                    f,
                    "cannot listen on {addr}: the system does not allow this program \
                     to listen there (permission denied: a security policy, or a raised \
                     net.ipv4.ip_unprivileged_port_start?)"
                ),
                _ => write!(f, "cannot listen on {addr}: {error}"),
            },
        }
    }
}

impl std::error::Error for StartError {}

/// A bound, not yet running, server.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<SharedState>,
    slots: Arc<Slots>,
    write_timeout: Duration,
    stopping: Arc<AtomicBool>,
    /// The store's housekeeping thread (syncs, and closes idle files).
    syncing: Option<JoinHandle<()>>,
}

impl Server {
    /// Loads the users (from `config.users`, or the built-in six) and binds.
    pub fn bind(config: &Config) -> Result<Server, StartError> {
        let Some(path) = &config.users else {
            let server = Server::bind_with_users(config, Accounts::built_in())?;
            if !config.bind.is_loopback() {
                log::warn!(
                    "serving the six built-in users, whose password 123456 is public, on {}: \
                     anyone who can reach this port can log in as them; give your own \
                     accounts with --users FILE (one name:password a line)",
                    config.bind
                );
            }
            return Ok(server);
        };
        let users = Accounts::load(path).map_err(StartError::Users)?;
        Server::bind_with_users(config, users)
    }

    /// Binds with an account directory made by the caller.
    pub fn bind_with_users(config: &Config, users: Accounts) -> Result<Server, StartError> {
        let soft_limit = descriptors::soft_limit();
        let max_clients = descriptors::fit_clients(config.max_clients, soft_limit)
            .map_err(StartError::Descriptors)?;
        let requested = SocketAddr::new(config.bind, config.port);
        // The original's `socket`, `bind` and `listen(socketfd, 2)` in one: std's default
        // backlog instead of 2, so a burst of connections is not refused.
        let listener = TcpListener::bind(requested).map_err(|error| StartError::Bind {
            addr: requested,
            error,
        })?;
        let addr = listener.local_addr().map_err(|error| StartError::Bind {
            addr: requested,
            error,
        })?;
        // Only now, holding the port, is the data directory touched (created, made
        // private, files of an older format rewritten): a start that fails for the port
        // changes nothing there.
        let shared = SharedState::new(config, users).map_err(StartError::DataDir)?;
        if max_clients < config.max_clients {
            log::warn!(
                "--max-clients {} lowered to {max_clients}: the file descriptor limit \
                 (ulimit -n) is {}, and {} descriptors are kept for the listener, the log \
                 and the mailboxes; raise the limit to serve more clients",
                config.max_clients,
                soft_limit.unwrap_or_default(),
                descriptors::RESERVED_DESCRIPTORS
            );
        }
        log::info!(
            "listening on {addr} ({} users, data in {})",
            shared.accounts.len(),
            shared.mailboxes.dir().display()
        );
        let shared = Arc::new(shared);
        let stopping = Arc::new(AtomicBool::new(false));
        let syncing = Server::start_syncing(&shared, &stopping);
        Ok(Server {
            listener,
            addr,
            shared,
            // Room for the default limit up front, so that a crowd that size never
            // regrows the table; a higher limit grows as clients come.
            slots: Slots::new(max_clients, DEFAULT_MAX_CLIENTS),
            write_timeout: config.write_timeout,
            stopping,
            syncing,
        })
    }

    /// The address actually bound (with the real port when `--port 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Something that stops this server from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stopping: Arc::clone(&self.stopping),
            wake_addr: reachable(self.addr),
        }
    }

    /// Runs the server in a thread of its own.
    pub fn spawn(self) -> ServerHandle {
        let addr = self.addr;
        let stopper = self.stopper();
        let thread = thread::Builder::new()
            .name("accept".to_string())
            .spawn(move || self.run())
            .expect("the process can start its first thread");
        ServerHandle {
            addr,
            stopper,
            thread: Some(thread),
        }
    }

    /// Accepts clients until stopped, then closes every connection and waits for their
    /// threads to end.
    pub fn run(mut self) {
        let syncing = self.syncing.take();
        let mut accept_trouble = Trouble::default();
        let mut spawn_trouble = Trouble::default();
        for incoming in self.listener.incoming() {
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            match incoming {
                Ok(stream) => {
                    accept_trouble.over();
                    match self.admit(stream) {
                        Ok(()) => spawn_trouble.over(),
                        Err(error) => {
                            spawn_trouble.report(&format!("cannot start a client thread: {error}"));
                            thread::sleep(FAILURE_BACKOFF);
                        }
                    }
                }
                Err(error) if is_out_of_descriptors(&error) && self.slots.make_room() => {
                    // The limit was lowered under us (the client limit fits the one at
                    // startup): a connection that never logged in gave its descriptor
                    // back, as at the client limit, so that a login still gets in.
                    warn_limited!(
                        "accept failed: {error}; evicted the oldest connection that had \
                         not logged in to make room"
                    );
                }
                Err(error) => {
                    // Out of descriptors with everyone logged in, or out of memory:
                    // pause rather than spin, and keep serving the clients we have.
                    accept_trouble.report(&format!("accept failed: {error}"));
                    thread::sleep(FAILURE_BACKOFF);
                }
            }
        }
        log::info!("shutting down: closing {} connections", self.slots.count());
        self.slots.close_all();
        if !self.slots.wait_until_empty(SHUTDOWN_GRACE) {
            log::warn!(
                "{} client threads did not end within {SHUTDOWN_GRACE:?}",
                self.slots.count()
            );
        }
        if let Some(syncing) = syncing {
            syncing.thread().unpark();
            let _ = syncing.join();
        }
        // What the last second wrote reaches the disk before the process ends.
        self.shared.mailboxes.sync_written();
        log::info!("stopped");
    }

    /// The store's housekeeping thread: every `SYNC_INTERVAL` until the server stops, it
    /// syncs what the store wrote (under `--sync every-second`) and closes the files of
    /// mailboxes no longer in use. Started with the server, so that it is there before
    /// the first client.
    fn start_syncing(
        shared: &Arc<SharedState>,
        stopping: &Arc<AtomicBool>,
    ) -> Option<JoinHandle<()>> {
        let sync = shared.mailboxes.sync_policy() == SyncPolicy::EverySecond;
        let shared = Arc::clone(shared);
        let stopping = Arc::clone(stopping);
        let started = thread::Builder::new()
            .name("store".to_string())
            .stack_size(CLIENT_STACK_SIZE)
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    thread::park_timeout(SYNC_INTERVAL);
                    if sync {
                        shared.mailboxes.sync_written();
                    }
                    shared.mailboxes.close_idle_files();
                }
            });
        match started {
            Ok(thread) => Some(thread),
            Err(error) => {
                log::error!(
                    "cannot start the store's housekeeping thread ({error}); stored \
                     messages reach the disk when the kernel writes them, and its files \
                     stay open"
                );
                None
            }
        }
    }

    /// Starts a session for a new connection, or turns it away at the client limit
    /// (after evicting, if it can, a connection that has not logged in). Fails only if
    /// the connection cannot be set up or its thread cannot be started (the client is
    /// dropped).
    fn admit(&self, stream: TcpStream) -> io::Result<()> {
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            // Gone before we looked: nothing to serve.
            Err(_) => return Ok(()),
        };
        // Latency: our frames are whole already, Nagle would only hold them back.
        let _ = stream.set_nodelay(true);
        let connection = Connection::new(self.slots.next_id(), peer, stream, self.write_timeout)?;
        let connection = Arc::new(connection);
        let slot = match self.slots.admit(Arc::clone(&connection)) {
            Admission::Admitted { slot, evicted } => {
                if let Some(evicted) = evicted {
                    evicted.evict();
                }
                slot
            }
            Admission::Full => {
                warn_limited!(
                    "{peer}: refused: the server is at its limit of {} clients, all logged in",
                    self.slots.max_clients()
                );
                // A new socket's send buffer is empty: 12 bytes go out without blocking.
                let _ = connection.send(&Feedback::login(Flag::Busy).to_bytes());
                connection.close();
                return Ok(());
            }
        };
        let shared = Arc::clone(&self.shared);
        let id = connection.id();
        // The original's `pthread_create(&pthreadid, NULL, pthread_function, fd)`, with
        // `fd` pointing at `tempFd`, a variable the next `accept` overwrites: a thread
        // that started late served the wrong socket. Here the connection is moved in.
        let thread = thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(CLIENT_STACK_SIZE)
            .spawn(move || session::run(&shared, connection, slot))?;
        self.slots.attach(id, thread);
        Ok(())
    }
}

/// True for "too many open files", in this process (EMFILE) or the whole system
/// (ENFILE): the same numbers on every Linux architecture.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(error.raw_os_error(), Some(ENFILE | EMFILE))
}

/// Logs a recurring failure once, not once per retry, and says when it is over.
#[derive(Default)]
struct Trouble {
    ongoing: bool,
}

impl Trouble {
    fn report(&mut self, what: &str) {
        if !self.ongoing {
            log::warn!("{what}; backing off (repeats are not logged)");
            self.ongoing = true;
        }
    }

    fn over(&mut self) {
        if self.ongoing {
            log::info!("recovered");
            self.ongoing = false;
        }
    }
}

/// An address that reaches a listener bound to `addr`: a wildcard address is not one a
/// client can connect to, so use loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Stops a running server: cheap to clone, safe to call from a signal handler's thread.
#[derive(Clone, Debug)]
pub struct Stopper {
    stopping: Arc<AtomicBool>,
    wake_addr: SocketAddr,
}

impl Stopper {
    /// Asks the accept loop to end. `accept` blocks, so raise the flag and then connect
    /// to ourselves to wake it up.
    pub fn stop(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            let _ = TcpStream::connect_timeout(&self.wake_addr, WAKE_TIMEOUT);
        }
    }
}

impl Drop for Server {
    /// A server bound but never run stops its sync thread too.
    fn drop(&mut self) {
        if let Some(syncing) = self.syncing.take() {
            self.stopping.store(true, Ordering::Release);
            syncing.thread().unpark();
            let _ = syncing.join();
        }
    }
}

/// A server running in its own thread; dropping it stops the server and waits for it.
pub struct ServerHandle {
    addr: SocketAddr,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server is listening on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits until every client thread has ended.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stopper.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
