//! The supervisor's side: reads requests until the engine hangs up, starts each command in a
//! process group of its own, and gives each a waiter thread that sees it end, kills what is left
//! of its group, reaps it, records its end in the run's ended log and tells the engine. Waiter
//! threads are kept for the next command once theirs has ended, since starting a thread costs
//! a good part of what a small command does. Once the engine is gone, held commands are let go
//! at their gate (they exit without running) and the supervisor ends when the last command has.
//!
//! A group is signalled only while its leader is unreaped (so its pgid cannot name a stranger),
//! under the lock that the waiter also takes to reap it: see the local executor's docs.
//!
//! As a process of its own ([`Host::Process`]) the supervisor is also the child subreaper of
//! its commands' descendants: when a command ends, its waiter kills the processes of the attempt
//! that escaped its group as well ([`escaped`](super::escaped)), and a reaper thread reaps
//! every adopted child that ends. No child is reaped but under the children lock, and none that
//! is a command but by its waiter, so the reaper never takes a command's status; commands are
//! spawned under the spawning lock, which the reaper takes first, so that none of them is
//! taken for an adopted child before it is in the table.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::escaped::{self, Marker};
use super::programs::Programs;
use super::protocol::{Ended, EndedLine, Program, Reply, Request, Start, Status};
use crate::exec::process::{self, signal_group, KILLED_SETTLE};
use crate::exec::Ending;

/// A waiter thread only blocks in a few syscalls and writes two lines.
const WAITER_STACK_SIZE: usize = 128 * 1024;

/// How often a waiter looks again at the escaped processes it killed, or could not yet tell.
const ESCAPED_POLL: Duration = Duration::from_millis(5);

/// How long an adopted process with an empty environment (one executing a new program) is
/// looked at again before it is taken for none of the attempt's.
const EMPTY_ENVIRONMENT_WAIT: Duration = Duration::from_millis(100);

/// What the supervisor runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Host {
    /// A process of its own, the `engine` binary's: it becomes the child subreaper of its
    /// commands' descendants and reaps every child it adopts.
    Process,
    /// A thread of a unit test's process, which is not made a subreaper and reaps nothing but
    /// its own commands: being a subreaper is an attribute of the whole process, and reaping
    /// any other child would take a status that the test's own code waits for.
    Thread,
}

/// A command the supervisor started and has not yet reaped.
struct Child {
    pid: u32,
    /// The supervisor's end of a held command's stdin, until it is released.
    gate: Option<UnixStream>,
    /// Whether the command may have run: not held, or released.
    released: bool,
}

/// What a waiter thread is given: the command to wait for.
struct Job {
    id: u64,
    pid: u32,
    tag: String,
    ended_log: std::path::PathBuf,
    /// How the attempt's processes that escape its group are told.
    marker: Option<Marker>,
}

struct Shared {
    /// The commands not yet reaped (pid 0 once reaped, until the waiter is done). Every reaping
    /// of a child of this process is done under this lock.
    children: Mutex<HashMap<u64, Child>>,
    /// Held while a command is spawned and put in `children`, so that a command is never seen
    /// as a child that is not one; it counts the commands spawned.
    spawning: Mutex<u64>,
    /// Notified when a command has been spawned.
    spawned: Condvar,
    /// The waiter threads waiting for a job, each by its own channel.
    idle: Mutex<Vec<mpsc::Sender<Job>>>,
    /// Notified whenever a child is reaped or removed.
    removed: Condvar,
    replies: Mutex<UnixStream>,
    /// The ended log written last, kept open for the next end: usually of the same run.
    ended_log: Mutex<Option<(std::path::PathBuf, File)>>,
}

impl Shared {
    fn children(&self) -> MutexGuard<'_, HashMap<u64, Child>> {
        // A poisoned lock only means a waiter panicked; the table itself is consistent.
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawning(&self) -> MutexGuard<'_, u64> {
        self.spawning.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a reply; an engine that is gone no longer needs it.
    fn reply(&self, reply: &Reply) {
        let Ok(mut line) = serde_json::to_vec(reply) else {
            return;
        };
        line.push(b'\n');
        let mut replies = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        let _ = replies.write_all(&line);
    }
}

/// Serves the engine at the other end of `socket` until it hangs up and every command it
/// started has ended.
pub(super) fn serve(socket: UnixStream, host: Host) -> io::Result<()> {
    let shared = Arc::new(Shared {
        children: Mutex::new(HashMap::new()),
        spawning: Mutex::new(0),
        spawned: Condvar::new(),
        idle: Mutex::new(Vec::new()),
        removed: Condvar::new(),
        replies: Mutex::new(socket.try_clone()?),
        ended_log: Mutex::new(None),
    });
    if host == Host::Process {
        adopt_orphans(&shared);
    }
    let mut programs = Programs::default();
    for line in BufReader::new(socket).lines() {
        let Ok(line) = line else {
            break;
        };
        match serde_json::from_str::<Request>(&line) {
            Ok(Request::Start(start)) => self::start(&shared, &mut programs, start),
            Ok(Request::Release { id }) => release(&shared, id),
            Ok(Request::Signal { id, signal }) => {
                let children = shared.children();
                if let (Some(child), Ok(signal)) = (children.get(&id), Signal::try_from(signal)) {
                    // Unreaped, since it is in the table: the group is still its own.
                    let _ = signal_group(child.pid, Some(signal));
                }
            }
            Err(error) => tracing::error!(%error, "cannot read a request of the engine"),
        }
    }
    // The engine is gone: a held command never runs; the others are waited for.
    let mut children = shared.children();
    for child in children.values_mut() {
        child.gate = None;
    }
    while !children.is_empty() {
        children = shared
            .removed
            .wait(children)
            .unwrap_or_else(|e| e.into_inner());
    }
    Ok(())
}

/// Makes this process the child subreaper of its commands' descendants, and starts the thread
/// that reaps what it adopts.
fn adopt_orphans(shared: &Arc<Shared>) {
    #[cfg(target_os = "linux")]
    {
        if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(
                %error,
                "cannot become a child subreaper: processes that leave an attempt's group outlive it"
            );
            return;
        }
        let shared = shared.clone();
        let reaper = thread::Builder::new()
            .name("orphan-reaper".to_string())
            .stack_size(WAITER_STACK_SIZE)
            .spawn(move || reap_adopted(&shared));
        if let Err(error) = reaper {
            tracing::error!(%error, "cannot start the thread that reaps adopted processes");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = shared;
}

/// The reaper thread: reaps each child that ends and is not a command, for ever.
fn reap_adopted(shared: &Shared) {
    loop {
        let spawned = *shared.spawning();
        let pid = match process::wait_any_exited_unreaped() {
            Ok(pid) => pid,
            Err(error) if error.raw_os_error() == Some(libc::ECHILD) => {
                // No child at all: none can be adopted before the next command is spawned.
                let spawning = shared.spawning();
                drop(
                    shared
                        .spawned
                        .wait_while(spawning, |count| *count == spawned)
                        .unwrap_or_else(|e| e.into_inner()),
                );
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "cannot wait for the adopted processes");
                return;
            }
        };
        let spawning = shared.spawning();
        let children = shared.children();
        if children.values().any(|child| child.pid == pid) {
            // A command: its waiter reaps it.
            drop(spawning);
            drop(
                shared
                    .removed
                    .wait_while(children, |children| {
                        children.values().any(|child| child.pid == pid)
                    })
                    .unwrap_or_else(|e| e.into_inner()),
            );
        } else {
            process::reap_if_ended(pid);
        }
    }
}

fn start(shared: &Arc<Shared>, programs: &mut Programs, start: Start) {
    let id = start.id;
    let mut spawning = shared.spawning();
    let (pid, gate) = match spawn(programs, &start) {
        Ok(spawned) => spawned,
        Err(error) => {
            drop(spawning);
            let error = error.to_string();
            shared.reply(&Reply::Refused { id, error });
            return;
        }
    };
    shared.children().insert(
        id,
        Child {
            pid,
            gate,
            released: !start.held,
        },
    );
    *spawning += 1;
    drop(spawning);
    shared.spawned.notify_all();
    shared.reply(&Reply::Started { id, pid });
    let job = Job {
        id,
        pid,
        marker: Marker::of(&start.env),
        tag: start.tag,
        ended_log: start.ended_log,
    };
    if hand_to_waiter(shared, job).is_err() {
        // No thread to wait for it: kill it (unreaped, so the group is its own) and reap it.
        let mut children = shared.children();
        let _ = signal_group(pid, Some(Signal::SIGKILL));
        let _ = process::reap(pid);
        children.remove(&id);
        drop(children);
        shared.removed.notify_all();
        shared.reply(&Reply::Ended {
            id,
            ended: unknown_end(),
        });
    }
}

/// Gives `job` to an idle waiter thread, or to a new one.
fn hand_to_waiter(shared: &Arc<Shared>, job: Job) -> io::Result<()> {
    let idle = shared.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let job = match idle {
        Some(waiter) => match waiter.send(job) {
            Ok(()) => return Ok(()),
            // Its thread is gone (it cannot be, short of a panic): a new one takes the job.
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (sender, jobs) = mpsc::channel::<Job>();
    let waiter = {
        let shared = shared.clone();
        let sender = sender.clone();
        thread::Builder::new()
            .name("attempt-waiter".to_string())
            .stack_size(WAITER_STACK_SIZE)
            .spawn(move || {
                while let Ok(job) = jobs.recv() {
                    let ended = wait_for(&shared, &job);
                    // Idle before the engine hears of the end: the next command it starts,
                    // likely at once, then finds this thread free instead of starting another.
                    let mut idle = shared.idle.lock().unwrap_or_else(|e| e.into_inner());
                    idle.push(sender.clone());
                    drop(idle);
                    shared.reply(&ended);
                }
            })?
    };
    drop(waiter);
    sender
        .send(job)
        .map_err(|_| io::Error::other("a new waiter thread is gone"))
}

/// Starts the command; returns its pid and, when held, the gate.
fn spawn(programs: &mut Programs, start: &Start) -> io::Result<(u32, Option<UnixStream>)> {
    let (gate, stdin) = if start.held {
        let (gate, held) = UnixStream::pair()?;
        (Some(gate), Some(held))
    } else {
        (None, None)
    };
    let spawned = match &start.program {
        Program::Direct { argv, text } => {
            let (program, args) = argv.split_first().ok_or(io::ErrorKind::InvalidInput)?;
            // The command's own PATH, as `execvp` in it would use.
            let path = start
                .env
                .iter()
                .rev()
                .find(|(name, _)| name == "PATH")
                .map(|(_, value)| std::ffi::OsString::from(value))
                .or_else(|| std::env::var_os("PATH"));
            let mut command = match path.and_then(|path| programs.find(program, &path)) {
                Some(found) => {
                    let mut command = Command::new(found);
                    command.arg0(program);
                    command
                }
                None => Command::new(program),
            };
            command.args(args);
            match run(command, start, stdin.as_ref()) {
                Ok(pid) => Ok(pid),
                // Not found, not executable, not a binary: the shell says so, in its words.
                Err(_) => run(shell(["-c", text]), start, stdin.as_ref()),
            }
        }
        Program::Shell { script } => run(shell(["-c", script]), start, stdin.as_ref()),
        Program::ShellFile { path } => run(shell([path]), start, stdin.as_ref()),
    }?;
    Ok((spawned, gate))
}

fn shell<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut command = Command::new("/bin/sh");
    command.args(args);
    command
}

/// Spawns `command` as `start` says, in a new process group; returns its pid. The `Child`
/// handle of `std` is dropped: the waiter thread reaps the process.
fn run(mut command: Command, start: &Start, held: Option<&UnixStream>) -> io::Result<u32> {
    let stdout = append(&start.stdout)?;
    let stderr = if start.stderr == start.stdout {
        stdout.try_clone()?
    } else {
        append(&start.stderr)?
    };
    let stdin = match held {
        Some(held) => Stdio::from(OwnedFd::from(held.try_clone()?)),
        None => Stdio::null(),
    };
    command
        .current_dir(&start.workdir)
        // The supervisor's own mark, not the attempt's.
        .env_remove(crate::exec::ENGINE_PID_VAR)
        .envs(start.env.iter().map(|(name, value)| (name, value)))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    Ok(command.spawn()?.id())
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

fn release(shared: &Shared, id: u64) {
    let mut children = shared.children();
    if let Some(child) = children.get_mut(&id) {
        child.released = true;
        if let Some(gate) = child.gate.take() {
            // MSG_NOSIGNAL: a command gone already is no reason to die.
            let _ = nix::sys::socket::send(
                gate.as_raw_fd(),
                b"\n",
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            );
        }
    }
}

/// The waiter of one command: sees it exit, kills what is left of its group, reaps it, waits
/// for the killed processes to vanish, kills the attempt's processes that escaped the group
/// and records the end; returns the reply that tells the engine.
fn wait_for(shared: &Shared, job: &Job) -> Reply {
    let (id, pid) = (job.id, job.pid);
    let exited = process::wait_exited_unreaped(pid);
    let (reaped, released) = {
        let mut children = shared.children();
        let reaped = exited.and_then(|()| {
            // A zombie: the pgid is still its own, and this is the group's last signal.
            let _ = signal_group(pid, Some(Signal::SIGKILL));
            process::reap(pid)
        });
        let released = children.get_mut(&id).is_some_and(|child| {
            // Reaped: the pid may be reused now, so the group must never be signalled again.
            child.pid = 0;
            child.released
        });
        (reaped, released)
    };
    shared.removed.notify_all();
    let leftovers = !process::group_empty(pid) && !process::wait_group_gone(pid, KILLED_SETTLE);
    let leftovers = job
        .marker
        .as_ref()
        .is_some_and(|marker| !kill_escaped(shared, marker))
        || leftovers;
    let ended = match reaped {
        Ok(reaped) => Ended {
            status: match reaped.ending {
                Ending::Exited(code) => Status::Exited(code),
                Ending::Signaled(signal) => Status::Signaled(signal),
                _ => Status::Unknown,
            },
            user_cpu_us: reaped.user_cpu.as_micros() as u64,
            sys_cpu_us: reaped.sys_cpu.as_micros() as u64,
            max_rss_bytes: reaped.max_rss_bytes,
            leftovers,
        },
        Err(_) => unknown_end(),
    };
    if released {
        record_end(shared, &job.ended_log, &job.tag, ended.status);
    }
    shared.children().remove(&id);
    shared.removed.notify_all();
    Reply::Ended { id, ended }
}

/// SIGKILLs the attempt's processes that escaped its group, now that the group is dead: the
/// adopted children that carry its marker, then theirs, adopted as those die, and so on.
/// Returns whether they are all gone, or some outlived SIGKILL for [`KILLED_SETTLE`].
fn kill_escaped(shared: &Shared, marker: &Marker) -> bool {
    let started = Instant::now();
    let deadline = started + KILLED_SETTLE;
    loop {
        let mut unsure = false;
        let mut killed = Vec::new();
        {
            // Unreaped while both locks are held, so each pid is still the process looked at.
            let _spawning = shared.spawning();
            let children = shared.children();
            let commands = children.values().map(|child| child.pid).collect();
            for pid in escaped::adopted(&commands) {
                match marker.carried_by(pid) {
                    Some(true) => {
                        if nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL)
                            .is_ok()
                        {
                            killed.push(pid);
                        }
                    }
                    Some(false) => {}
                    None => unsure = true,
                }
            }
        }
        if killed.is_empty() {
            if !unsure || started.elapsed() >= EMPTY_ENVIRONMENT_WAIT {
                return true;
            }
            thread::sleep(ESCAPED_POLL);
            continue;
        }
        tracing::debug!(
            ?killed,
            "killed processes that escaped their attempt's group"
        );
        // Only reads from here: at worst, if a pid was reaped and reused, this waits for a
        // stranger until the deadline.
        while killed.iter().any(|pid| process::process_alive(*pid)) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            thread::sleep(ESCAPED_POLL.min(deadline - now));
        }
    }
}

fn unknown_end() -> Ended {
    Ended {
        status: Status::Unknown,
        user_cpu_us: 0,
        sys_cpu_us: 0,
        max_rss_bytes: 0,
        leftovers: false,
    }
}

/// Appends the attempt's end to the run's ended log, in one write.
fn record_end(shared: &Shared, ended_log: &Path, tag: &str, status: Status) {
    let (exit, signal) = match status {
        Status::Exited(code) => (Some(code), None),
        Status::Signaled(signal) => (None, Some(signal)),
        Status::Unknown => (None, None),
    };
    let line = EndedLine {
        attempt: tag.to_string(),
        exit,
        signal,
    };
    let Ok(mut bytes) = serde_json::to_vec(&line) else {
        return;
    };
    bytes.push(b'\n');
    let mut open = shared.ended_log.lock().unwrap_or_else(|e| e.into_inner());
    // The file kept open serves only while it is still the log at that path: the engine removes
    // a run's log once the run has ended, and a run resumed later starts it anew.
    let kept = open.take().filter(|(path, file)| {
        path == ended_log && file.metadata().is_ok_and(|meta| meta.nlink() > 0)
    });
    let file = match kept {
        Some((_, file)) => Ok(file),
        None => {
            if let Some(dir) = ended_log.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            append(ended_log)
        }
    };
    let written = file.and_then(|mut file| {
        file.write_all(&bytes)?;
        Ok(file)
    });
    match written {
        Ok(file) => *open = Some((ended_log.to_path_buf(), file)),
        Err(error) => tracing::error!(
            attempt = tag,
            log = %ended_log.display(),
            %error,
            "cannot record how the attempt ended"
        ),
    }
}
