//! The attempts' supervisor: a small process, one per engine process and state directory, that
//! starts the local attempts' commands, waits for them, and records how each ended in its run's
//! ended log (`logs/RUN/ended.jsonl`) before it tells the engine.
//!
//! It exists so that an attempt's end is known even when the engine dies while the command
//! runs: the supervisor outlives the engine (it has a process group of its own, so a Ctrl-C at
//! the terminal does not reach it), waits for the commands that are left, records their ends
//! and exits; recovery waits for it, then settles the attempts from the log. Before it, each
//! attempt had a `/bin/sh` wrapper of its own for this, and starting a shell costs as much as
//! a small command: with the supervisor, a command that needs no shell (see
//! [`crate::exec::direct`]) is the only program its attempt starts.
//!
//! The supervisor is the engine's own binary, started as `engine --attempt-supervisor` (see
//! [`asked`] and [`serve_stdin`]) with a Unix socket for its stdin, over which both sides send
//! one JSON object a line ([`protocol`]); it shares the engine's stderr, where it logs what goes
//! wrong on its side. In the library's unit tests it is a thread of the test process instead,
//! serving the same protocol, since the test binary is not the engine.
//!
//! The supervisor process is the child subreaper of its commands' descendants, so that it can
//! kill an attempt's processes that left its process group as well (module `escaped`); the thread
//! of the unit tests is not.

mod escaped;
mod programs;
pub mod protocol;
mod serve;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;

use tokio::sync::oneshot;

pub use protocol::{exit_statuses, Ended, Program, Start, Status};
use protocol::{Reply, Request};

/// The argument that makes the `engine` binary a supervisor.
pub const SUPERVISOR_FLAG: &str = "--attempt-supervisor";

/// Whether this process was started as a supervisor: asked in the `engine` binary's `main`,
/// before anything else.
pub fn asked() -> bool {
    std::env::args_os().nth(1).as_deref() == Some(SUPERVISOR_FLAG.as_ref())
}

/// Serves the engine at the other end of stdin until it hangs up and every command it started
/// has ended; the supervisor's exit code.
pub fn serve_stdin() -> ExitCode {
    let served = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .and_then(|socket| serve::serve(socket, serve::Host::Process));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "cannot serve the engine");
            ExitCode::FAILURE
        }
    }
}

/// The supervisors of this process, by state directory.
static SUPERVISORS: Mutex<Vec<(PathBuf, Arc<Supervisor>)>> = Mutex::new(Vec::new());

/// The supervisor of this process for `state_dir`, started if there is none (or if the one
/// there was has gone).
pub(crate) fn for_state(state_dir: &Path) -> io::Result<Arc<Supervisor>> {
    let mut supervisors = SUPERVISORS.lock().unwrap_or_else(|e| e.into_inner());
    supervisors.retain(|(_, supervisor)| supervisor.is_open());
    if let Some((_, supervisor)) = supervisors.iter().find(|(dir, _)| dir == state_dir) {
        return Ok(supervisor.clone());
    }
    let supervisor = Arc::new(Supervisor::start(state_dir)?);
    supervisors.push((state_dir.to_path_buf(), supervisor.clone()));
    Ok(supervisor)
}

/// The pids of this process's supervisor processes: recovery must not wait for them.
pub(crate) fn own_pids() -> Vec<u32> {
    let supervisors = SUPERVISORS.lock().unwrap_or_else(|e| e.into_inner());
    supervisors.iter().filter_map(|(_, s)| s.pid).collect()
}

/// The engine's end of a supervisor.
#[derive(Debug)]
pub(crate) struct Supervisor {
    requests: Mutex<UnixStream>,
    waiting: Arc<Mutex<Waiting>>,
    next_id: AtomicU64,
    /// The supervisor's pid; `None` when it is a thread (unit tests).
    pid: Option<u32>,
}

/// The replies the engine waits for.
#[derive(Debug, Default)]
struct Waiting {
    /// Whether the supervisor is still there to reply.
    open: bool,
    started: HashMap<u64, mpsc::SyncSender<StartReply>>,
    ended: HashMap<u64, oneshot::Sender<Ended>>,
}

/// The pid of a command, or why it could not start.
type StartReply = Result<u32, String>;

/// A command the supervisor started.
pub(crate) struct Started {
    pub(crate) id: u64,
    pub(crate) pid: u32,
    /// Resolves when the command has ended; closed if the supervisor is gone.
    pub(crate) ended: oneshot::Receiver<Ended>,
}

impl Supervisor {
    fn start(state_dir: &Path) -> io::Result<Supervisor> {
        let (ours, theirs) = UnixStream::pair()?;
        let (pid, process) = if cfg!(test) {
            thread::Builder::new()
                .name("supervisor".to_string())
                .spawn(move || serve::serve(theirs, serve::Host::Thread))?;
            (None, None)
        } else {
            let child = std::process::Command::new(own_binary()?)
                .arg(SUPERVISOR_FLAG)
                .env(super::STATE_DIR_VAR, state_dir)
                .env(super::ENGINE_PID_VAR, std::process::id().to_string())
                .stdin(OwnedFd::from(theirs))
                .stdout(std::process::Stdio::null())
                .process_group(0)
                .spawn()?;
            (Some(child.id()), Some(child))
        };
        let waiting = Arc::new(Mutex::new(Waiting {
            open: true,
            ..Waiting::default()
        }));
        let replies = ours.try_clone()?;
        {
            let waiting = waiting.clone();
            thread::Builder::new()
                .name("supervisor-replies".to_string())
                .spawn(move || read_replies(replies, &waiting, process))?;
        }
        Ok(Supervisor {
            requests: Mutex::new(ours),
            waiting,
            next_id: AtomicU64::new(1),
            pid,
        })
    }

    fn is_open(&self) -> bool {
        lock(&self.waiting).open
    }

    fn send(&self, request: &Request) -> io::Result<()> {
        let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.write_all(&line)
    }

    /// Starts a command and waits (briefly: the supervisor replies as soon as the process
    /// exists) for its pid, calling `meanwhile` once the request is sent. `start.id` is set
    /// here.
    pub(crate) fn start_command(
        &self,
        mut start: Start,
        meanwhile: impl FnOnce(),
    ) -> io::Result<Started> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        start.id = id;
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let (ended_tx, ended_rx) = oneshot::channel();
        {
            let mut waiting = lock(&self.waiting);
            if !waiting.open {
                return Err(gone());
            }
            waiting.started.insert(id, started_tx);
            waiting.ended.insert(id, ended_tx);
        }
        if let Err(error) = self.send(&Request::Start(start)) {
            let mut waiting = lock(&self.waiting);
            waiting.started.remove(&id);
            waiting.ended.remove(&id);
            return Err(error);
        }
        meanwhile();
        match started_rx.recv() {
            Ok(Ok(pid)) => Ok(Started {
                id,
                pid,
                ended: ended_rx,
            }),
            Ok(Err(error)) => Err(io::Error::other(error)),
            Err(_) => Err(gone()),
        }
    }

    /// Lets a held command run.
    pub(crate) fn release(&self, id: u64) {
        let _ = self.send(&Request::Release { id });
    }

    /// Signals the command's process group, unless its leader has been reaped.
    pub(crate) fn signal(&self, id: u64, signal: nix::sys::signal::Signal) {
        let _ = self.send(&Request::Signal {
            id,
            signal: signal as i32,
        });
    }
}

fn gone() -> io::Error {
    io::Error::other("the attempts' supervisor is gone")
}

fn lock(waiting: &Mutex<Waiting>) -> MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(|e| e.into_inner())
}

/// This binary, to start as the supervisor: its path, or on Linux, if its file was replaced since
/// it started (an upgrade while the daemon runs), `/proc/self/exe`, which still names it.
fn own_binary() -> io::Result<PathBuf> {
    let path = std::env::current_exe()?;
    if cfg!(target_os = "linux") && !path.is_file() {
        return Ok(PathBuf::from("/proc/self/exe"));
    }
    Ok(path)
}

/// Hands each reply to whoever waits for it, until the supervisor hangs up; then fails
/// everything still waited for, and reaps the supervisor's process.
fn read_replies(
    socket: UnixStream,
    waiting: &Mutex<Waiting>,
    process: Option<std::process::Child>,
) {
    for line in BufReader::new(socket).lines() {
        let Ok(line) = line else {
            break;
        };
        let reply = match serde_json::from_str::<Reply>(&line) {
            Ok(reply) => reply,
            Err(error) => {
                tracing::error!(%error, "a reply of the attempts' supervisor that cannot be read");
                continue;
            }
        };
        // Each sender is taken out under the lock and used after it: sending wakes the waiting
        // thread, which would otherwise find the lock still held the moment it runs.
        match reply {
            Reply::Started { id, pid } => {
                let sender = lock(waiting).started.remove(&id);
                if let Some(sender) = sender {
                    let _ = sender.send(Ok(pid));
                }
            }
            Reply::Refused { id, error } => {
                let sender = {
                    let mut waiting = lock(waiting);
                    waiting.ended.remove(&id);
                    waiting.started.remove(&id)
                };
                if let Some(sender) = sender {
                    let _ = sender.send(Err(error));
                }
            }
            Reply::Ended { id, ended } => {
                let sender = lock(waiting).ended.remove(&id);
                if let Some(sender) = sender {
                    let _ = sender.send(ended);
                }
            }
        }
    }
    let mut waiting = lock(waiting);
    if !waiting.ended.is_empty() {
        tracing::error!(
            attempts = waiting.ended.len(),
            "the attempts' supervisor is gone: how the running attempts end is lost"
        );
    }
    waiting.open = false;
    waiting.started.clear();
    waiting.ended.clear();
    drop(waiting);
    if let Some(mut process) = process {
        let _ = process.wait();
    }
}
