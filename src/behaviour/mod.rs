//! Behavioural measures: questionnaire scoring.

pub mod efa;
pub mod scoring;
