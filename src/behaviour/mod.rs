//! Behavioural measures: questionnaire scoring.

pub mod scoring;
