//! The operating-system primitives the local executor is built on: waiting for a child without
//! reaping it, reaping it with its resource usage, signalling a process group only when that is
//! safe, and telling from `/proc` whether a process or a group is still alive.
//!
//! The two raw syscalls without a safe wrapper that fits (`waitid` with `WNOWAIT` on every unix,
//! `wait4` for per-child rusage) each live in one small function that allows `unsafe_code`.
//! (`nix`'s `waitid` rejects the real-time signals, as its `waitpid` does.)

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgrp, Pid};

use super::Ending;

/// How often [`wait_group_gone`] looks again.
const GROUP_POLL: Duration = Duration::from_millis(5);

/// How long SIGKILLed processes get to disappear before the engine reports them and moves on.
/// SIGKILL cannot be caught, so only a process stuck in the kernel (state D) takes this long.
pub(crate) const KILLED_SETTLE: Duration = Duration::from_secs(2);

/// Blocks until the child `pid` has exited, WITHOUT reaping it: afterwards it is a zombie that
/// still holds its pid, so its pid, and the pgid equal to it, cannot be reused by anyone.
pub(crate) fn wait_exited_unreaped(pid: u32) -> io::Result<()> {
    let pid = raw_pid(pid)?;
    loop {
        match waitid_nowait(libc::P_PID, pid as libc::id_t) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            result => return result.map(drop),
        }
    }
}

/// Blocks until any child of this process has exited, WITHOUT reaping it; returns its pid. The
/// same child is returned again until someone reaps it. Fails with `ECHILD` when there is no
/// child at all.
pub(crate) fn wait_any_exited_unreaped() -> io::Result<u32> {
    loop {
        match waitid_nowait(libc::P_ALL, 0) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            result => return result.map(|pid| pid as u32),
        }
    }
}

/// `waitid(WEXITED | WNOWAIT)`: the pid of the child that exited.
#[allow(unsafe_code)]
fn waitid_nowait(idtype: libc::idtype_t, id: libc::id_t) -> io::Result<libc::pid_t> {
    // SAFETY: `siginfo_t` is a plain C struct for which all zeroes is a valid value; `waitid`
    // writes at most one `siginfo_t` through the pointer, which is valid for the whole call, and
    // after a successful `waitid(WEXITED)` it holds a SIGCHLD's fields, `si_pid` among them.
    let (result, pid) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let result = libc::waitid(idtype, id, &mut info, libc::WEXITED | libc::WNOWAIT);
        (result, info.si_pid())
    };
    if result == 0 {
        Ok(pid)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reaps the child `pid` if it has ended, without waiting and without asking how.
pub(crate) fn reap_if_ended(pid: u32) {
    if let Ok(raw) = raw_pid(pid) {
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(raw),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

/// What [`reap`] collected about a child that ended.
pub(crate) struct Reaped {
    /// `Exited` or `Signaled`.
    pub(crate) ending: Ending,
    pub(crate) user_cpu: Duration,
    pub(crate) sys_cpu: Duration,
    pub(crate) max_rss_bytes: u64,
}

/// Reaps the child `pid`, blocking until it exits, and returns its status and resource usage:
/// its own and that of every descendant it waited for. Once this returns, the pid and the pgid
/// equal to it may be reused as soon as no member of the group remains.
pub(crate) fn reap(pid: u32) -> io::Result<Reaped> {
    let pid = raw_pid(pid)?;
    let (status, usage) = loop {
        match wait4(pid) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            result => break result?,
        }
    };
    // Decoded by hand rather than by `nix`, which rejects the real-time signals.
    let ending = if libc::WIFEXITED(status) {
        Ending::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Ending::Signaled(libc::WTERMSIG(status))
    } else {
        Ending::Lost
    };
    Ok(Reaped {
        ending,
        user_cpu: duration(usage.ru_utime),
        sys_cpu: duration(usage.ru_stime),
        max_rss_bytes: max_rss_bytes(usage.ru_maxrss),
    })
}

#[allow(unsafe_code)]
fn wait4(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct for which all zeroes is a valid value; `wait4` writes
    // one `c_int` and one `rusage` through pointers to these locals, valid for the whole call.
    let (result, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let result = libc::wait4(pid, &mut status, 0, &mut usage);
        (result, usage)
    };
    if result == pid {
        Ok((status, usage))
    } else {
        Err(io::Error::last_os_error())
    }
}

fn duration(time: libc::timeval) -> Duration {
    let secs = u64::try_from(time.tv_sec).unwrap_or(0);
    let micros = u32::try_from(time.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// `ru_maxrss` is in bytes on Apple systems and in kibibytes everywhere else.
fn max_rss_bytes(max_rss: libc::c_long) -> u64 {
    let max_rss = u64::try_from(max_rss).unwrap_or(0);
    if cfg!(target_vendor = "apple") {
        max_rss
    } else {
        max_rss.saturating_mul(1024)
    }
}

fn raw_pid(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(raw) if raw > 0 => Ok(raw),
        _ => Err(io::Error::from(Errno::EINVAL)),
    }
}

/// Sends `signal` to every member of the process group `pgid` (`None`: only checks that the
/// group has a member, zombies included).
///
/// Refuses (with `EINVAL`) the pgids that would hit more than a group of ours: 0 (the caller's
/// own group), 1 (init's), anything above `pid_t`'s range, and the engine's own group. It cannot
/// check that `pgid` still names the group the caller means; that is the caller's reasoning.
pub(crate) fn signal_group(pgid: u32, signal: Option<Signal>) -> nix::Result<()> {
    let raw = match libc::pid_t::try_from(pgid) {
        Ok(raw) if raw > 1 => Pid::from_raw(raw),
        _ => return Err(Errno::EINVAL),
    };
    if raw == getpgrp() {
        return Err(Errno::EINVAL);
    }
    killpg(raw, signal)
}

/// What `/proc/PID/stat` says about one process.
struct Stat {
    state: char,
    ppid: i64,
    pgrp: i64,
}

impl Stat {
    /// Whether the process runs or can run again: not a zombie (`Z`) and not dead (`X`, `x`).
    fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/PID/stat`; `None` if the process does not exist (or this is not Linux).
fn stat(pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold ')' and spaces: the
    // fields that follow start after the last ')'. Field 3 is the state, 4 the ppid, 5 the pgrp.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
    })
}

/// The children of this process, zombies included (empty but on Linux).
///
/// They are read from `/proc/self/task/PID/children`: those of the main thread, which is the
/// one a child subreaper's adopted orphans are given to, and in the supervisor the one that
/// starts the commands. The kernel builds that list a child at a time, so a child reaped while
/// it is read may hide the next one: the caller holds whatever lock its reaping takes. On a
/// kernel without that file, every process's `/proc/PID/stat` is read for its parent.
pub(crate) fn own_children() -> Vec<u32> {
    let own = std::process::id();
    match std::fs::read_to_string(format!("/proc/self/task/{own}/children")) {
        Ok(text) => text
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect(),
        Err(_) => {
            let Ok(entries) = std::fs::read_dir("/proc") else {
                return Vec::new();
            };
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| stat(&pid.to_string()).is_some_and(|s| s.ppid == i64::from(own)))
                .collect()
        }
    }
}

/// Whether a process with this pid exists and is not a zombie.
///
/// On Linux this reads `/proc`, so a zombie (ended, not yet reaped by its parent) counts as dead;
/// elsewhere it falls back to `kill(pid, 0)`, which counts a zombie as alive.
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    if cfg!(target_os = "linux") {
        stat(&pid.to_string()).is_some_and(|stat| stat.is_live())
    } else {
        matches!(
            nix::sys::signal::kill(Pid::from_raw(raw), None),
            Ok(()) | Err(Errno::EPERM)
        )
    }
}

/// Whether any live (non-zombie) process is in the group `pgid`.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if raw <= 1 {
        return false;
    }
    // Cheap first: ESRCH means the group has no member at all, not even a zombie.
    if group_empty(pgid) {
        return false;
    }
    if !cfg!(target_os = "linux") {
        return true;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        name.bytes().all(|b| b.is_ascii_digit())
            && stat(name).is_some_and(|stat| stat.pgrp == i64::from(raw) && stat.is_live())
    })
}

/// Whether the group `pgid` has no member at all, not even a zombie: one syscall.
pub(crate) fn group_empty(pgid: u32) -> bool {
    signal_group(pgid, None) == Err(Errno::ESRCH)
}

/// Blocks until no live process is left in the group `pgid`, or `within` has passed; returns
/// whether the group is gone.
pub(crate) fn wait_group_gone(pgid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(GROUP_POLL.min(deadline - now));
    }
}

/// Kills a leftover process group, for crash recovery: SIGTERM (and SIGCONT, for stopped
/// processes) to the group, then up to `grace` for it to vanish, then SIGKILL, then up to a
/// couple of seconds for the killed processes to vanish, so that when this returns nothing of
/// the group runs any more (zombies waiting for their parent to reap them do not count). Blocks the calling thread: from async code, call it
/// in `spawn_blocking`.
///
/// Does nothing for a group that does not exist, one the engine may not signal, or a pgid that
/// would hit more than one group (0, 1, the engine's own). The caller must know that `pgid` is
/// still the attempt's group, e.g. because its leader (pid = pgid) has the attempt in its
/// environment, as recovery reads it from `/proc`; a pgid read back from the store after a
/// crash may have been reused once the attempt's group emptied.
pub fn kill_group(pgid: u32, grace: Duration) {
    if signal_group(pgid, Some(Signal::SIGTERM)).is_err() {
        return;
    }
    // A stopped process acts on SIGTERM only once continued.
    let _ = signal_group(pgid, Some(Signal::SIGCONT));
    if wait_group_gone(pgid, grace) {
        return;
    }
    // A failure here means the group vanished since the last look: nothing left to kill.
    let _ = signal_group(pgid, Some(Signal::SIGKILL));
    if !wait_group_gone(pgid, KILLED_SETTLE) {
        tracing::warn!(pgid, "processes of the group survive SIGKILL");
    }
}
