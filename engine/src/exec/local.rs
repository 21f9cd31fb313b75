//! The local executor: runs each attempt's command in a process group of its own, through the
//! engine's [supervisor](super::supervisor), waits for it without blocking the async runtime,
//! enforces its timeout and cancellation by signalling the whole group, and makes sure no
//! process of the attempt outlives it.
//!
//! A command that needs no shell ([`direct`](super::direct)) is executed directly; any other
//! runs as `/bin/sh -c COMMAND`, or, when it is too long for one argument (128 KiB on Linux; an
//! aggregate step's `{inputs}` over thousands of files is longer), is written to the attempt's
//! script file and run as `/bin/sh SCRIPT`. Its stdin is empty.
//!
//! # The gate
//!
//! An attempt started `held` exists before its command runs: it is a shell script that first
//! waits for one line on its stdin, a socket whose other end the supervisor holds, and only then
//! runs the command (with stdin from /dev/null). The engine sends the line with
//! [`RunningAttempt::release`], once it has committed the attempt's start, together with
//! whatever else the command relies on, in one store transaction. If the engine dies before,
//! the supervisor closes the socket, `read` fails and the script exits without running the
//! command: nothing ran that the store does not know about. An attempt not held runs at once;
//! the scheduler holds only those whose start recovery could not otherwise learn of.
//!
//! # Signalling, and the race between reaping and signalling
//!
//! The command's process is the leader of a new process group, so its pid is the pgid. A pgid
//! names our group only while the group has a member: once the last member is gone, the number
//! can be given to a new process, which may make itself the leader of a group with the same
//! number, and `killpg` would then hit a stranger. The leader's pid stays taken for as long as
//! the leader is unreaped, even after it exited (a zombie). So the supervisor, which is the
//! leader's parent, signals the group only while the leader is unreaped, under the same lock
//! its waiter takes to reap it:
//!
//! 1. The waiter blocks in `waitid(WEXITED | WNOWAIT)`: it learns that the leader exited
//!    without reaping it.
//! 2. Until then, SIGTERM and SIGKILL to the group on timeout or cancel (sent by the engine
//!    through the supervisor) are safe.
//! 3. Then, under the lock, the waiter sends SIGKILL to the group once more, which kills
//!    whatever the command left behind (`(sleep 100 &)`, children that ignored SIGTERM), and
//!    reaps the leader with `wait4`, which gives the rusage. From here on the group is never
//!    signalled again. The kernel makes `killpg` atomic against `fork`, so no new member
//!    escapes the last signal.
//! 4. If the group still has members (the processes just killed, not yet gone), the waiter
//!    waits for them to vanish, for at most a couple of seconds. This only reads: at worst, if
//!    the number had been reused, it waits for a stranger and signals nothing.
//! 5. It records the end in the run's ended log, then tells the engine.
//!
//! If the [`RunningAttempt`] is dropped before `wait` finishes, its `Drop` has the group killed;
//! the supervisor reaps the leader as always, so no zombie is left.
//!
//! A process that leaves the group (`setsid`, `setpgid`) escapes all of this. The supervisor,
//! its child subreaper, kills the attempt's escaped processes after step 4, before it records
//! the end (see the supervisor's `escaped` module).

use std::fs;
use std::future::pending;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::supervisor::{self, Ended, Program, Start, Status, Supervisor};
use super::{direct, files, AttemptOutcome, AttemptSpec, Ending, ExecError};

pub use super::process::{kill_group, process_alive};

/// Runs attempts as local process groups, through the supervisor of its state directory. It
/// holds no state of its own: every attempt is independent, and the concurrency limits belong
/// to the scheduler.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    state_dir: PathBuf,
}

impl LocalExecutor {
    /// A local executor for the engine whose state directory is `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        LocalExecutor {
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// Prepares the attempt's output directory and log files, then has the supervisor start the
    /// command in its own process group; when `held`, the command waits at the gate until
    /// [`release`](RunningAttempt::release)d. Returns as soon as the process exists, with its
    /// pid, for the caller to record; the timeout counts from here.
    ///
    /// Needs no async runtime; [`RunningAttempt::wait`] does.
    pub fn start(&self, spec: &AttemptSpec, held: bool) -> Result<RunningAttempt, ExecError> {
        self.start_while(spec, held, || {})
    }

    /// [`start`](Self::start), calling `meanwhile` (at most once) while the supervisor starts
    /// the command: the caller's own work then overlaps with the start instead of following it.
    pub fn start_while(
        &self,
        spec: &AttemptSpec,
        held: bool,
        meanwhile: impl FnOnce(),
    ) -> Result<RunningAttempt, ExecError> {
        let out_dir = if spec.prepared {
            std::path::absolute(&spec.out_dir).map_err(|source| ExecError::OutDir {
                path: spec.out_dir.clone(),
                source,
            })?
        } else {
            let out_dir = files::prepare_out_dir(&spec.out_dir)?;
            files::create_log(&spec.stdout_path)?;
            if spec.stderr_path != spec.stdout_path {
                files::create_log(&spec.stderr_path)?;
            }
            out_dir
        };
        let spawn_error = |source| ExecError::Spawn {
            workdir: spec.workdir.clone(),
            source,
        };
        let program = if held {
            shell_program(spec, [GATE, &spec.command].concat())?
        } else {
            match direct::argv(&spec.command) {
                Some(argv) if spec.command.len() <= LONGEST_ARGUMENT => Program::Direct {
                    argv,
                    text: spec.command.clone(),
                },
                _ => shell_program(spec, spec.command.clone())?,
            }
        };
        let mut env = spec.env.clone();
        env.push((
            "ENGINE_OUT".to_string(),
            out_dir.to_string_lossy().into_owned(),
        ));
        let supervisor = supervisor::for_state(&self.state_dir).map_err(spawn_error)?;
        let started = Instant::now();
        let command = supervisor
            .start_command(
                Start {
                    id: 0,
                    program,
                    env,
                    workdir: spec.workdir.clone(),
                    stdout: spec.stdout_path.clone(),
                    stderr: spec.stderr_path.clone(),
                    held,
                    tag: spec.tag.clone(),
                    ended_log: spec.ended_log.clone(),
                },
                meanwhile,
            )
            .map_err(spawn_error)?;
        tracing::debug!(pid = command.pid, tag = %spec.tag, "attempt started");
        Ok(RunningAttempt {
            supervisor,
            id: command.id,
            pid: command.pid,
            held,
            started,
            timeout: spec.timeout,
            kill_grace: spec.kill_grace,
            ended: command.ended,
            done: false,
        })
    }
}

/// `/bin/sh -c SCRIPT`, or `/bin/sh FILE` with the script written to the attempt's script file
/// when it is longer than one argument may be.
fn shell_program(spec: &AttemptSpec, script: String) -> Result<Program, ExecError> {
    if script.len() <= LONGEST_ARGUMENT {
        Ok(Program::Shell { script })
    } else {
        write_script(&spec.script, &script)?;
        Ok(Program::ShellFile {
            path: std::path::absolute(&spec.script).map_err(|source| ExecError::Script {
                path: spec.script.clone(),
                source,
            })?,
        })
    }
}

/// What a held command's script does first: wait at the gate, then give the command an empty
/// stdin. 111 is never collected: the engine that would read it is gone, or kills the attempt.
const GATE: &str = "read -r _ || exit 111\nexec </dev/null\n";

/// Scripts longer than this are written to the script file, since Linux limits one argument to
/// 128 KiB (`MAX_ARG_STRLEN`); shorter ones are passed as `sh -c SCRIPT` (or executed directly),
/// which spares a file per attempt.
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

/// An attempt that has been started and not yet waited for.
///
/// Dropping it before [`wait`](Self::wait) completes has the attempt's process group killed, so
/// an abandoned attempt leaves no processes behind.
#[derive(Debug)]
pub struct RunningAttempt {
    supervisor: Arc<Supervisor>,
    /// The supervisor's name for the attempt.
    id: u64,
    /// The pid of the command's process, which is also the pgid of its group.
    pid: u32,
    /// Whether it waits at the gate until released.
    held: bool,
    /// Just before the start: the origin of the wall time and of the timeout.
    started: Instant,
    timeout: Option<Duration>,
    kill_grace: Duration,
    /// Resolves once the command has ended and been reaped (closed if the supervisor is gone).
    ended: oneshot::Receiver<Ended>,
    /// Whether `ended` has resolved: the group is out of our hands.
    done: bool,
}

impl RunningAttempt {
    /// The pid of the attempt's leader: the command, or the shell that runs it.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The attempt's process group; equal to [`pid`](Self::pid), since the leader leads it.
    pub fn pgid(&self) -> u32 {
        self.pid
    }

    /// Lets a held command run. Does nothing the second time, or for a command not held.
    /// Commit what the command relies on first.
    pub fn release(&mut self) {
        if std::mem::take(&mut self.held) {
            self.supervisor.release(self.id);
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
        let mut ended = None;
        let killed_for = tokio::select! {
            biased;
            result = &mut self.ended => {
                ended = Some(result);
                None
            }
            () = sleep_until(deadline) => Some(Ending::TimedOut),
            () = cancel.cancelled() => Some(Ending::Cancelled),
        };
        let ended = match ended {
            Some(ended) => ended,
            None => self.terminate().await,
        };
        self.done = true;
        let wall = self.started.elapsed();
        let outcome = match ended {
            Ok(ended) => {
                if ended.leftovers {
                    tracing::warn!(pgid = self.pid, "processes of the attempt survive SIGKILL");
                }
                AttemptOutcome {
                    ending: killed_for.unwrap_or(match ended.status {
                        Status::Exited(code) => Ending::Exited(code),
                        Status::Signaled(signal) => Ending::Signaled(signal),
                        Status::Unknown => Ending::Lost,
                    }),
                    wall,
                    user_cpu: Duration::from_micros(ended.user_cpu_us),
                    sys_cpu: Duration::from_micros(ended.sys_cpu_us),
                    max_rss_bytes: ended.max_rss_bytes,
                }
            }
            Err(_) => {
                tracing::error!(pid = self.pid, "cannot collect the attempt's status");
                AttemptOutcome {
                    ending: killed_for.unwrap_or(Ending::Lost),
                    wall,
                    user_cpu: Duration::ZERO,
                    sys_cpu: Duration::ZERO,
                    max_rss_bytes: 0,
                }
            }
        };
        tracing::debug!(pid = self.pid, ending = %outcome.ending, "attempt ended");
        outcome
    }

    /// SIGTERM (and SIGCONT) to the group, SIGKILL after the grace; returns once the command
    /// has ended.
    async fn terminate(&mut self) -> Result<Ended, oneshot::error::RecvError> {
        self.supervisor.signal(self.id, Signal::SIGTERM);
        // A stopped process acts on SIGTERM only once continued.
        self.supervisor.signal(self.id, Signal::SIGCONT);
        tokio::select! {
            biased;
            result = &mut self.ended => return result,
            () = tokio::time::sleep(self.kill_grace) => {}
        }
        self.supervisor.signal(self.id, Signal::SIGKILL);
        (&mut self.ended).await
    }
}

impl Drop for RunningAttempt {
    fn drop(&mut self) {
        if !self.done {
            // The supervisor signals only a group whose leader it has not reaped, and reaps it.
            self.supervisor.signal(self.id, Signal::SIGKILL);
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

#[cfg(test)]
mod tests;
