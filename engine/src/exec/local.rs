//! The local executor: runs each attempt's command as a `/bin/sh` script in a process group of
//! its own, waits for it without blocking the async runtime, enforces its timeout and
//! cancellation by signalling the whole group, and makes sure no process of the attempt outlives
//! it.
//!
//! The command runs as `/bin/sh -c SCRIPT`, or, when it is too long for one argument (128 KiB on
//! Linux; an aggregate step's `{inputs}` over thousands of files is longer), is written to the
//! attempt's script file and run as `/bin/sh SCRIPT`.
//!
//! # The gate
//!
//! An attempt's process exists before its command runs: the script first waits for one line on
//! its stdin, a socket whose other end the engine holds, and only then runs the command (with
//! stdin from /dev/null). The engine sends the line with [`RunningAttempt::release`], once it has
//! committed the pid, together with whatever else the command relies on (the upstream task's
//! products), in one store transaction. If the engine dies before, the socket closes, `read`
//! fails and the script exits without running the command: nothing ran that the store does not
//! know about.
//!
//! # Waiting, and the race between reaping and signalling
//!
//! The attempt's `sh` is the leader of a new process group, so its pid is the pgid. A pgid names
//! our group only while the group has a member: once the last member is gone, the number can be
//! given to a new process, which may make itself the leader of a group with the same number, and
//! `killpg` would then hit a stranger. The leader's pid stays taken for as long as the leader is
//! unreaped, even after it exited (a zombie). So this module signals the group only while the
//! leader is unreaped, and the one place that reaps it is the one place that signals:
//!
//! 1. `start` spawns a small waiter thread that blocks in `waitid(WEXITED | WNOWAIT)`: it learns
//!    that the leader exited without reaping it, and tells [`RunningAttempt::wait`] over a
//!    oneshot channel. No polling, no tokio worker blocked; the thread lives as long as the leader.
//! 2. Until that message, the leader is alive or a zombie, so SIGTERM and SIGKILL to the group on
//!    timeout or cancel are safe.
//! 3. After it, `wait` sends SIGKILL to the group once more, still before reaping, which kills
//!    whatever the command left behind (`(sleep 100 &)`, children that ignored SIGTERM). The
//!    kernel makes `killpg` atomic against `fork`, so no new member escapes it.
//! 4. Only then does `wait` reap the leader with `wait4`, which returns at once for a zombie and
//!    gives the rusage. From here on the group is never signalled again.
//! 5. If the group still has members (the processes killed in step 3, not yet gone), `wait` waits
//!    for them to vanish, off the runtime, for at most a couple of seconds. This only reads: at
//!    worst, if the number had been reused, it waits for a stranger and signals nothing.
//!
//! If the [`RunningAttempt`] is dropped before `wait` finishes, its `Drop` kills the group (the
//! leader is unreaped, so that is safe), then closes the channel: whichever side learns that the
//! leader exited (the waiter thread, whose send now fails, or `Drop`, which finds the message)
//! reaps it, so no zombie is left.
//!
//! A process that leaves the group (`setsid`, `setpgid`) escapes all of this; containing those
//! needs cgroups, which is a job for a container executor.

use std::fs::{self, File};
use std::future::pending;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::process::{self, signal_group, Reaped};
use super::{AttemptOutcome, AttemptSpec, Ending, ExecError};

pub use super::process::{kill_group, process_alive, process_start_time};

/// The waiter thread only blocks in one syscall and sends one message.
const WAITER_STACK_SIZE: usize = 64 * 1024;

/// Runs attempts as local process groups. It holds no state: every attempt is independent, and
/// the concurrency limits belong to the scheduler.
#[derive(Debug, Clone, Default)]
pub struct LocalExecutor {
    _private: (),
}

impl LocalExecutor {
    /// A local executor.
    pub fn new() -> Self {
        LocalExecutor { _private: () }
    }

    /// Prepares the attempt's output directory, log files and script, then spawns
    /// `/bin/sh SCRIPT` in its own process group, held at the gate. Returns as soon as the
    /// process exists, so the caller can commit the pid, pgid and start time to its store
    /// (durability principle) before it lets the command run with
    /// [`release`](RunningAttempt::release); the timeout counts from here.
    ///
    /// Needs no async runtime; [`RunningAttempt::wait`] does.
    pub fn start(&self, spec: &AttemptSpec) -> Result<RunningAttempt, ExecError> {
        let out_dir = prepare_out_dir(&spec.out_dir)?;
        let stdout = create_log(&spec.stdout_path)?;
        let stderr = if spec.stderr_path == spec.stdout_path {
            // One open file shared by both streams, so neither overwrites the other.
            stdout.try_clone().map_err(|source| ExecError::LogFile {
                path: spec.stderr_path.clone(),
                source,
            })?
        } else {
            create_log(&spec.stderr_path)?
        };

        let (gate, held) = UnixStream::pair().map_err(|source| ExecError::Spawn {
            script: spec.script.clone(),
            workdir: spec.workdir.clone(),
            source,
        })?;
        let mut command = Command::new("/bin/sh");
        let script = [GATE, &spec.command].concat();
        if script.len() <= LONGEST_ARGUMENT {
            command.arg("-c").arg(script);
        } else {
            write_script(&spec.script, &script)?;
            command.arg(&spec.script);
        }
        command
            .current_dir(&spec.workdir)
            .envs(spec.env.iter().map(|(name, value)| (name, value)))
            .env("ENGINE_OUT", &out_dir)
            .stdin(Stdio::from(OwnedFd::from(held)))
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let started = Instant::now();
        let child = command.spawn().map_err(|source| ExecError::Spawn {
            script: spec.script.clone(),
            workdir: spec.workdir.clone(),
            source,
        })?;
        // From here the child is reaped by this module only, never through `std`'s handle.
        let pid = child.id();
        drop(child);
        drop(command);
        let start_time = process_start_time(pid);

        let (exited_tx, exited_rx) = oneshot::channel();
        let waiter = thread::Builder::new()
            .name(format!("attempt-{pid}"))
            .stack_size(WAITER_STACK_SIZE)
            .spawn(move || {
                let exited = process::wait_exited_unreaped(pid);
                let leader_is_zombie = exited.is_ok();
                // A failed send means the `RunningAttempt` was dropped after killing the group:
                // nobody else will reap the leader.
                if exited_tx.send(exited).is_err() && leader_is_zombie {
                    let _ = process::reap(pid);
                }
            });
        if let Err(source) = waiter {
            // The leader is unreaped, so the group is still ours to kill.
            let _ = signal_group(pid, Some(Signal::SIGKILL));
            let _ = process::reap(pid);
            return Err(ExecError::Waiter { pid, source });
        }
        tracing::debug!(pid, script = %spec.script.display(), "attempt started");

        Ok(RunningAttempt {
            pid,
            gate: Some(gate),
            start_time,
            started,
            timeout: spec.timeout,
            kill_grace: spec.kill_grace,
            exited: exited_rx,
            reaped: false,
        })
    }
}

/// Empties (removes and recreates) the output directory; returns its absolute path.
pub(super) fn prepare_out_dir(path: &Path) -> Result<std::path::PathBuf, ExecError> {
    let error = |source| ExecError::OutDir {
        path: path.to_owned(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(error)?,
        Ok(_) => fs::remove_file(path).map_err(error)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    fs::create_dir_all(path).map_err(error)?;
    std::path::absolute(path).map_err(error)
}

/// What the script does before the command: wait at the gate, then give the command an empty
/// stdin. 111 is never collected: the engine that would read it is gone, or kills the attempt.
const GATE: &str = "read -r _ || exit 111\nexec </dev/null\n";

/// Scripts longer than this are written to the script file, since Linux limits one argument to
/// 128 KiB (`MAX_ARG_STRLEN`); shorter ones are passed as `sh -c SCRIPT`, which spares a file
/// per attempt.
const LONGEST_ARGUMENT: usize = 100 * 1024;

fn write_script(path: &Path, script: &str) -> Result<(), ExecError> {
    let error = |source| ExecError::Script {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(error)?;
    }
    fs::write(path, script).map_err(error)
}

pub(super) fn create_log(path: &Path) -> Result<File, ExecError> {
    let error = |source| ExecError::LogFile {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(error)?;
    }
    File::create(path).map_err(error)
}

/// An attempt that has been started and not yet waited for.
///
/// Dropping it before [`wait`](Self::wait) completes SIGKILLs the attempt's process group and
/// reaps the leader, so an abandoned attempt leaves neither processes nor zombies.
#[derive(Debug)]
pub struct RunningAttempt {
    /// The pid of the `sh` leading the attempt, which is also the pgid of its group.
    pid: u32,
    /// The engine's end of the gate, until the command is released.
    gate: Option<UnixStream>,
    /// The leader's start time in clock ticks after boot, where the system tells it (Linux).
    start_time: Option<u64>,
    /// Just before the spawn: the origin of the wall time and of the timeout.
    started: Instant,
    timeout: Option<Duration>,
    kill_grace: Duration,
    /// Resolves once the leader has exited, left unreaped by the waiter thread (or once waiting
    /// for it failed). Until the leader is reaped its pid, hence the pgid, cannot be reused.
    exited: oneshot::Receiver<io::Result<()>>,
    /// Whether the leader has been reaped or is otherwise out of our hands. Once it is, the pgid
    /// may be reused and the group must never be signalled again.
    reaped: bool,
}

impl RunningAttempt {
    /// The pid of the attempt's leader (the `sh`).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The attempt's process group; equal to [`pid`](Self::pid), since the leader leads it.
    pub fn pgid(&self) -> u32 {
        self.pid
    }

    /// The leader's start time in clock ticks after boot (Linux; `None` elsewhere). Record it
    /// with the pid: after a crash, [`process_start_time`] equal to it proves the pid still
    /// names this attempt and not a process that was given the same pid later.
    pub fn start_time(&self) -> Option<u64> {
        self.start_time
    }

    /// Lets the command run: sends the line the script waits for at the gate. Does nothing the
    /// second time. Commit what the command relies on first.
    pub fn release(&mut self) {
        if let Some(gate) = self.gate.take() {
            // MSG_NOSIGNAL: if the script is gone already, that is an error here, not a SIGPIPE
            // that ends the engine. The error itself needs no handling: `wait` sees the exit.
            let _ = nix::sys::socket::send(
                gate.as_raw_fd(),
                b"\n",
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            );
        }
    }

    /// Waits for the end (releasing the command first if [`release`](Self::release) was not
    /// called): exit, timeout (`spec.timeout` after `start`: SIGTERM to the group, then
    /// SIGKILL after `kill_grace`), or `cancel` fired (the same signals). After the leader exits,
    /// any process left in the group is SIGKILLed, so no process of the attempt survives.
    /// Collects wall time, CPU time and max RSS (`wait4`'s rusage).
    ///
    /// Timeout and cancellation act within milliseconds, plus the grace if the command ignores
    /// SIGTERM. An attempt killed by the engine ends `TimedOut` or `Cancelled` whatever its exit
    /// status; one that exited before the engine acted ends with its own status.
    pub async fn wait(mut self, cancel: CancellationToken) -> AttemptOutcome {
        self.release();
        let deadline = self
            .timeout
            .and_then(|timeout| self.started.checked_add(timeout));
        let mut exited = None;
        let killed_for = tokio::select! {
            biased;
            result = &mut self.exited => {
                exited = Some(flatten(result));
                None
            }
            () = sleep_until(deadline) => Some(Ending::TimedOut),
            () = cancel.cancelled() => Some(Ending::Cancelled),
        };
        let exited = match exited {
            Some(exited) => exited,
            None => self.terminate().await,
        };
        let wall = self.started.elapsed();

        // Nothing below awaits until `reaped` is set: a drop cannot land between the leader's
        // exit and its reaping.
        let reaped = match exited {
            Ok(()) => {
                // The leader is a zombie: the pgid is still ours, and this is the last signal.
                let _ = signal_group(self.pid, Some(Signal::SIGKILL));
                process::reap(self.pid)
            }
            Err(error) => Err(error),
        };
        self.reaped = true;

        let outcome = match reaped {
            Ok(reaped) => outcome(killed_for, wall, &reaped),
            Err(error) => {
                tracing::error!(pid = self.pid, %error, "cannot collect the attempt's status");
                AttemptOutcome {
                    ending: killed_for.unwrap_or(Ending::Lost),
                    wall,
                    user_cpu: Duration::ZERO,
                    sys_cpu: Duration::ZERO,
                    max_rss_bytes: 0,
                }
            }
        };

        if !process::group_empty(self.pid) {
            self.settle_leftovers().await;
        }
        tracing::debug!(pid = self.pid, ending = %outcome.ending, "attempt ended");
        outcome
    }

    /// SIGTERM (and SIGCONT) to the group, SIGKILL after the grace; returns once the leader has
    /// exited.
    async fn terminate(&mut self) -> io::Result<()> {
        // Errors mean the group is gone already; the exit message is on its way.
        let _ = signal_group(self.pid, Some(Signal::SIGTERM));
        // A stopped process acts on SIGTERM only once continued.
        let _ = signal_group(self.pid, Some(Signal::SIGCONT));
        tokio::select! {
            biased;
            result = &mut self.exited => return flatten(result),
            () = tokio::time::sleep(self.kill_grace) => {}
        }
        let _ = signal_group(self.pid, Some(Signal::SIGKILL));
        flatten((&mut self.exited).await)
    }

    /// Waits, off the runtime, for the processes killed after the leader's exit to vanish.
    async fn settle_leftovers(&self) {
        let pgid = self.pid;
        let gone = tokio::task::spawn_blocking(move || {
            process::wait_group_gone(pgid, process::KILLED_SETTLE)
        })
        .await
        .unwrap_or(false);
        if !gone {
            tracing::warn!(pgid, "processes of the attempt survive SIGKILL");
        }
    }
}

impl Drop for RunningAttempt {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The leader is unreaped, so the group is still ours to kill.
        let _ = signal_group(self.pid, Some(Signal::SIGKILL));
        // After `close`, the waiter's send fails and it reaps the leader itself, unless the
        // message was sent before: then it is here, and reaping is ours (immediate, a zombie).
        self.exited.close();
        if let Ok(Ok(())) = self.exited.try_recv() {
            let _ = process::reap(self.pid);
        }
    }
}

/// Sleeps until `deadline`; forever without one.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => pending().await,
    }
}

fn flatten(received: Result<io::Result<()>, oneshot::error::RecvError>) -> io::Result<()> {
    received.unwrap_or_else(|_| Err(io::Error::other("the waiter thread ended without a word")))
}

fn outcome(killed_for: Option<Ending>, wall: Duration, reaped: &Reaped) -> AttemptOutcome {
    AttemptOutcome {
        ending: killed_for.unwrap_or(reaped.ending),
        wall,
        user_cpu: reaped.user_cpu,
        sys_cpu: reaped.sys_cpu,
        max_rss_bytes: reaped.max_rss_bytes,
    }
}

#[cfg(test)]
mod tests;
