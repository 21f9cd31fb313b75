//! The attempt's wrapper: the process that leads an attempt's process group, waits at the gate,
//! runs the command as its child, writes the command's exit status to the status file and exits
//! as the command did.
//!
//! It is a `fork` of the engine that never `exec`s: starting a program costs a millisecond or
//! more (loading, linking, the C library's start-up), as much as a small command itself, and a
//! fork of the engine costs a fraction of that. The command is then `exec`ed directly when it is
//! a plain one ([`direct`](super::direct)), else as `/bin/sh -c COMMAND` (or `/bin/sh SCRIPT`
//! when it is too long for one argument).
//!
//! # What the child may do
//!
//! The engine has many threads; the child of its `fork` has one, and whatever lock another
//! thread held at that moment (the allocator's, stdout's, the runtime's) stays locked in it. So
//! from the fork to the end, the wrapper only makes async-signal-safe calls: raw system calls
//! through `libc` on memory prepared before the fork ([`Launch`]), no allocation, no `std`
//! I/O, no formatting machinery, no panics. The command's process, forked from the wrapper,
//! only sets up its file descriptors and `exec`s.
//!
//! # Signals
//!
//! The wrapper ignores SIGTERM, so that a command given SIGTERM (on timeout or cancel) has its
//! grace to end before SIGKILL, and the wrapper outlives it to record how it ended. Every other
//! signal has its default action, and the command starts with all defaults and nothing blocked.
//! When the command is killed by a signal, the wrapper writes `128 + N` (as a shell would) and
//! then kills itself with the same signal, so the engine sees the signal.

// What happens between `fork` and `exec` can only be said in raw system calls: this module is
// the engine's one place for it, and nothing else in it is unsafe.
#![allow(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{c_char, c_int};

use super::direct::{self, RedirectMode};

/// The exit status of a wrapper whose gate closed before the command was released: the engine
/// that would read it is gone, or kills the attempt.
const GATE_CLOSED: c_int = 111;

/// Commands longer than this are written to a script file, since Linux limits one argument to
/// 128 KiB (`MAX_ARG_STRLEN`).
const LONGEST_ARGUMENT: usize = 100 * 1024;

/// Everything the wrapper and the command need, prepared before the fork.
pub struct Launch {
    program: CString,
    argv: Vec<CString>,
    /// Whether the program is the command's own, not `/bin/sh`.
    direct: bool,
    /// For a program that `execve` refuses as not executable (a script without `#!`):
    /// `/bin/sh PROGRAM ARGS...`, as the shell would have run it.
    script_argv: Vec<CString>,
    env: Vec<CString>,
    workdir: CString,
    redirects: Vec<(c_int, CString, c_int)>,
    status_file: Option<CString>,
    /// The wrapper's stdin: its end of the gate.
    gate: OwnedFd,
    stdout: OwnedFd,
    /// `None` when stderr shares stdout's file.
    stderr: Option<OwnedFd>,
}

/// How a command given as `command` is started, with `env` (the whole environment) in
/// `workdir`: directly when it is plain, else through `/bin/sh`. A command too long for one
/// argument is written to `script` first.
pub struct Command<'a> {
    pub command: &'a str,
    pub script: &'a Path,
    pub env: Vec<(OsString, OsString)>,
    pub workdir: &'a Path,
    pub status_file: Option<&'a Path>,
}

impl Launch {
    /// Prepares the launch. Fails when a string holds a NUL byte, or the script cannot be
    /// written.
    pub fn new(
        command: Command<'_>,
        gate: OwnedFd,
        stdout: OwnedFd,
        stderr: Option<OwnedFd>,
    ) -> io::Result<Launch> {
        let path = command
            .env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
        let direct = (command.command.len() <= LONGEST_ARGUMENT)
            .then(|| direct::parse(command.command))
            .flatten()
            .and_then(|direct| {
                let program = direct::find_program(&direct.argv[0], &path, command.workdir)?;
                Some((program, direct))
            });
        let is_direct = direct.is_some();
        let (program, argv, redirects) = match direct {
            Some((program, direct)) => {
                let redirects = direct
                    .redirects
                    .iter()
                    .map(|r| {
                        let flags = match r.mode {
                            RedirectMode::Read => libc::O_RDONLY,
                            RedirectMode::Truncate => {
                                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC
                            }
                            RedirectMode::Append => libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
                        };
                        Ok((r.fd, c_string(r.path.as_bytes())?, flags))
                    })
                    .collect::<io::Result<Vec<_>>>()?;
                let argv: Vec<CString> = direct
                    .argv
                    .iter()
                    .map(|word| c_string(word.as_bytes()))
                    .collect::<io::Result<_>>()?;
                (c_string(program.as_os_str().as_bytes())?, argv, redirects)
            }
            None if command.command.len() <= LONGEST_ARGUMENT => {
                let argv = vec![
                    c_string(b"/bin/sh")?,
                    c_string(b"-c")?,
                    c_string(command.command.as_bytes())?,
                ];
                (c_string(b"/bin/sh")?, argv, Vec::new())
            }
            None => {
                if let Some(dir) = command.script.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(command.script, command.command)?;
                let argv = vec![
                    c_string(b"/bin/sh")?,
                    c_string(command.script.as_os_str().as_bytes())?,
                ];
                (c_string(b"/bin/sh")?, argv, Vec::new())
            }
        };
        let mut script_argv = vec![c_string(b"/bin/sh")?, program.clone()];
        script_argv.extend(argv.iter().skip(1).cloned());
        let env = command
            .env
            .iter()
            .map(|(name, value)| {
                let mut pair = name.as_bytes().to_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                c_string(&pair)
            })
            .collect::<io::Result<_>>()?;
        Ok(Launch {
            program,
            argv,
            direct: is_direct,
            script_argv,
            env,
            workdir: c_string(command.workdir.as_os_str().as_bytes())?,
            redirects,
            status_file: command
                .status_file
                .map(|path| c_string(path.as_os_str().as_bytes()))
                .transpose()?,
            gate,
            stdout,
            stderr,
        })
    }

    /// Whether the command runs without a shell.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Forks the wrapper, leader of a new process group; returns its pid. The wrapper waits at
    /// the gate before it runs the command.
    pub fn spawn(&self) -> io::Result<u32> {
        let argv = pointers(&self.argv);
        let script_argv = pointers(&self.script_argv);
        let env = pointers(&self.env);
        let stderr = self.stderr.as_ref().unwrap_or(&self.stdout).as_raw_fd();
        // SAFETY: the child only runs `wrap`, which keeps to async-signal-safe calls on memory
        // prepared above (see the module's documentation) and never returns.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe {
                wrap(Child {
                    program: self.program.as_ptr(),
                    argv: argv.as_ptr(),
                    script_argv: script_argv.as_ptr(),
                    env: env.as_ptr(),
                    workdir: self.workdir.as_ptr(),
                    redirects: &self.redirects,
                    status_file: self.status_file.as_ref().map(|path| path.as_ptr()),
                    gate: self.gate.as_raw_fd(),
                    stdout: self.stdout.as_raw_fd(),
                    stderr,
                })
            },
            pid => {
                // The child does the same; whichever comes first, the group exists before the
                // engine may signal it.
                // SAFETY: plain system call.
                unsafe { libc::setpgid(pid, pid) };
                Ok(pid as u32)
            }
        }
    }
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the command, its environment or a path holds a NUL byte",
        )
    })
}

/// A null-terminated array of pointers into `strings`, for `execve`.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The whole environment of a command: the engine's, overridden by `extra` in order.
pub fn environment<'a>(
    extra: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (name, value) in extra {
        match env.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.to_owned(),
            None => env.push((name.to_owned(), value.to_owned())),
        }
    }
    env
}

/// What the child of the fork works with: raw pointers and descriptors only.
struct Child<'a> {
    program: *const c_char,
    argv: *const *const c_char,
    script_argv: *const *const c_char,
    env: *const *const c_char,
    workdir: *const c_char,
    redirects: &'a [(c_int, CString, c_int)],
    status_file: Option<*const c_char>,
    gate: c_int,
    stdout: c_int,
    stderr: c_int,
}

/// The wrapper, in the child of the fork. Never returns.
///
/// # Safety
///
/// Only in the child of a `fork`, with pointers into memory that outlives nothing else it does.
unsafe fn wrap(child: Child<'_>) -> ! {
    libc::setpgid(0, 0);
    default_signals();
    libc::signal(libc::SIGTERM, libc::SIG_IGN);
    // The gate is stdin, the logs stdout and stderr; every other descriptor of the engine is
    // closed (its store, its sockets, other attempts' gates). Copied above 2 first, so that
    // none is overwritten before it is copied (an engine started with 0, 1 or 2 closed).
    let gate = libc::fcntl(child.gate, libc::F_DUPFD, 3);
    let stdout = libc::fcntl(child.stdout, libc::F_DUPFD, 3);
    let stderr = libc::fcntl(child.stderr, libc::F_DUPFD, 3);
    if gate < 0 || stdout < 0 || stderr < 0 {
        libc::_exit(126);
    }
    if libc::dup2(gate, 0) < 0 || libc::dup2(stdout, 1) < 0 || libc::dup2(stderr, 2) < 0 {
        libc::_exit(126);
    }
    close_from(3);
    let mut byte = 0u8;
    loop {
        match libc::read(0, (&mut byte as *mut u8).cast(), 1) {
            1 => break,
            -1 if errno() == libc::EINTR => continue,
            _ => libc::_exit(GATE_CLOSED),
        }
    }
    if libc::chdir(child.workdir) != 0 {
        say(&[
            b"engine: cannot enter the working directory: ",
            describe(errno()),
        ]);
        finish(child.status_file, 126);
    }
    let pid = libc::fork();
    if pid == 0 {
        command(&child);
    }
    if pid < 0 {
        say(&[b"engine: cannot start the command: ", describe(errno())]);
        finish(child.status_file, 126);
    }
    let mut status: c_int = 0;
    while libc::waitpid(pid, &mut status, 0) != pid {
        if errno() != libc::EINTR {
            finish(child.status_file, 126);
        }
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        write_status(child.status_file, 128 + signal);
        // Ends like the command did; without a core dump of the wrapper.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(signal, libc::SIG_DFL);
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal);
    }
    finish(child.status_file, libc::WEXITSTATUS(status));
}

/// The command's process: stdin from /dev/null, the redirections, then the program.
unsafe fn command(child: &Child<'_>) -> ! {
    libc::signal(libc::SIGTERM, libc::SIG_DFL);
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
    if null < 0 || libc::dup2(null, 0) < 0 {
        libc::_exit(126);
    }
    if null != 0 {
        libc::close(null);
    }
    for (fd, path, flags) in child.redirects {
        let opened = libc::open(path.as_ptr(), *flags | libc::O_CLOEXEC, 0o666);
        if opened < 0 {
            let error = errno();
            say(&[
                b"engine: cannot open ",
                path.as_bytes(),
                b": ",
                describe(error),
            ]);
            libc::_exit(2);
        }
        if opened != *fd {
            // dup2 clears close-on-exec on the new descriptor.
            if libc::dup2(opened, *fd) < 0 {
                libc::_exit(2);
            }
            libc::close(opened);
        } else {
            libc::fcntl(opened, libc::F_SETFD, 0);
        }
    }
    libc::execve(child.program, child.argv, child.env);
    let error = errno();
    if error == libc::ENOEXEC {
        libc::execve(c"/bin/sh".as_ptr(), child.script_argv, child.env);
    }
    let program = std::ffi::CStr::from_ptr(child.program).to_bytes();
    say(&[b"engine: cannot run ", program, b": ", describe(error)]);
    libc::_exit(if error == libc::ENOENT { 127 } else { 126 });
}

/// Writes the status and exits with it.
unsafe fn finish(status_file: Option<*const c_char>, code: c_int) -> ! {
    write_status(status_file, code);
    libc::_exit(code);
}

/// Writes the status file: the exit status and a newline, in one `write`. A reader that finds it
/// empty or partial treats it as no status at all.
unsafe fn write_status(status_file: Option<*const c_char>, code: c_int) {
    let Some(path) = status_file else {
        return;
    };
    let mut buffer = [0u8; 24];
    let mut len = decimal(code.max(0) as u64, &mut buffer);
    buffer[len] = b'\n';
    len += 1;
    let fd = libc::open(
        path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
        0o666,
    );
    if fd >= 0 {
        libc::write(fd, buffer.as_ptr().cast(), len);
        libc::close(fd);
    }
}

/// Writes `value` in decimal at the start of `out` (which must hold 20 bytes); returns the length.
fn decimal(mut value: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (value % 10) as u8;
        count += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for i in 0..count {
        out[i] = digits[count - 1 - i];
    }
    count
}

/// Writes the parts and a newline to stderr (the attempt's log).
unsafe fn say(parts: &[&[u8]]) {
    for part in parts {
        libc::write(2, part.as_ptr().cast(), part.len());
    }
    libc::write(2, b"\n".as_ptr().cast(), 1);
}

/// A few words for the errors a start meets; the number for the rest.
fn describe(error: c_int) -> &'static [u8] {
    match error {
        libc::ENOENT => b"no such file or directory",
        libc::EACCES => b"permission denied",
        libc::ENOTDIR => b"not a directory",
        libc::EISDIR => b"is a directory",
        libc::E2BIG => b"argument list too long",
        libc::ENOEXEC => b"not an executable",
        libc::ENOMEM => b"out of memory",
        libc::ENOSPC => b"no space left on device",
        libc::EROFS => b"read-only file system",
        _ => b"system error",
    }
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Every signal to its default action, none blocked: handlers inherited from the engine would
/// run its code in the wrapper, and an ignored signal stays ignored across `exec`.
unsafe fn default_signals() {
    for signal in 1..libc::SIGRTMAX() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
}

/// Closes every descriptor from `first` on.
unsafe fn close_from(first: c_int) {
    if libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) == 0 {
        return;
    }
    let mut limit: libc::rlimit = std::mem::zeroed();
    let last = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
        limit.rlim_cur.min(1 << 20) as c_int
    } else {
        1024
    };
    for fd in first..last {
        libc::close(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = [0u8; 20];
        for value in [0u64, 7, 10, 1234567890, u64::MAX] {
            let len = decimal(value, &mut out);
            assert_eq!(&out[..len], value.to_string().as_bytes());
        }
    }
}
