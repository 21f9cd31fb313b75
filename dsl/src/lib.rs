//! The `.pipe` language: grammar ([`parser`]), syntax tree ([`ast`]), checks and lowering into
//! checked [`model::Pipeline`]s with a petgraph DAG ([`load`]), the canonical layout
//! ([`format`]), and diagnostics with stable codes ([`diagnostic`], rendered by [`render`]).
//!
//! ```
//! let loaded = dsl::load_source("hello.pipe", r#"
//!     pipeline hello {
//!       step greet { run "echo hello > {out}/greeting.txt" }
//!     }
//! "#);
//! assert!(loaded.is_valid());
//! assert_eq!(loaded.pipelines[0].steps[0].name, "greet");
//! ```

pub mod ast;
pub mod diagnostic;
pub mod format;
pub mod load;
mod lower;
pub mod model;
pub mod parser;
pub mod render;
pub mod span;
pub mod stdlib;
mod syntax_error;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use load::{load_file, load_source, Loaded};
pub use span::{FileId, SourceMap, Span};
