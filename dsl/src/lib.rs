//! The `.pipe` language.
pub mod ast;
pub mod diagnostic;
pub mod parser;
pub mod span;
mod syntax_error;
