//! The `engine` binary: everything is in the library; this only maps the outcome to an exit code.

fn main() -> std::process::ExitCode {
    // The attempts' supervisor keeps Rust's SIGPIPE handling: an engine that went away is no
    // reason for it to die while commands still run.
    if engine::exec::supervisor::asked() {
        return engine::cli::supervisor_main();
    }
    restore_sigpipe();
    engine::cli::main()
}

/// Rust ignores SIGPIPE, which turns `engine runs | head` into a panic on the next write. A
/// command-line tool should instead end quietly when its reader goes away, as `cat` does.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
