//! neurospec runs a whole brain–behaviour study from one TOML file.
//!
//! The flow is `spec` (typed, checked study) → `plan` (a DAG of fingerprinted stage instances)
//! → `exec` (parallel execution against the content-addressed `store`) → `outputs` (a
//! BIDS-derivatives-style folder with provenance). See `ARCHITECTURE.md` for the map.
//!
//! ```no_run
//! let loaded = neurospec::spec::load(std::path::Path::new("studies/ukb-symptoms.toml"))?;
//! let resolved = neurospec::spec::check::resolve(&loaded)?;
//! let plan = neurospec::plan::compile(&resolved);
//! println!("{} stage instances", plan.order.len());
//! # Ok::<(), neurospec::error::Error>(())
//! ```

// `!(x > 0.0)` is used on purpose: it is true for NaN, which must fail every such check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod behaviour;
pub mod cli;
pub mod design;
pub mod error;
pub mod exec;
pub mod imaging;
pub mod outputs;
pub mod plan;
pub mod report;
pub mod sim;
pub mod spec;
pub mod stages;
pub mod stats;
pub mod store;
pub mod tables;
