//! The `engine` binary: everything is in the library; this only maps the outcome to an exit code.

fn main() -> std::process::ExitCode {
    engine::cli::main()
}
