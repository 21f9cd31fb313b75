//! The HTTP API that `engine daemon` serves: JSON over hyper, documented in `docs/openapi.json`.

pub mod control;
