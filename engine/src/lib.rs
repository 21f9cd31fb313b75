//! `engine`: runs pipelines written in `.pipe` files. The command-line interface lives in
//! [`cli`], one module per subcommand; the language itself is the `dsl` crate.

pub mod cli;
