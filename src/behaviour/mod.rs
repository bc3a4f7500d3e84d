//! Behavioural measures: questionnaire scoring.

pub mod efa;
pub mod rotations;
pub mod scoring;
