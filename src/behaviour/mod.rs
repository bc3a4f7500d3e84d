//! Behavioural measures: questionnaire scoring.

pub mod efa;
pub mod efa_command;
pub mod scoring;
