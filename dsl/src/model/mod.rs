//! The checked, lowered form of pipelines: what the engine plans and runs. Serializable and
//! free of spans, so two layouts of the same pipeline lower to equal values.

pub mod command;
pub mod condition;
pub mod notify;
pub mod param;
pub mod pattern;
pub mod pipeline;
pub mod quantity;
pub mod sorted_map;
pub mod source;
pub mod step;
pub mod trigger;

pub use command::{CommandTemplate, Placeholder};
pub use condition::Condition;
pub use notify::Notify;
pub use param::{ParamDef, ParamType, ParamValue};
pub use pattern::Pattern;
pub use pipeline::{Overlap, Pipeline};
pub use sorted_map::{Env, SortedMap};
pub use source::SourceDef;
pub use step::StepDef;
pub use trigger::{Missed, Trigger};
