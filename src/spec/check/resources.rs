//! `[resources.<stage kind>]`: what each stage instance of a kind asks a Slurm cluster for, and
//! `[resources.publish]`: what the job that publishes the output folder asks for.
//! Checked with the settings (it needs no file): the kind must exist and every value must be in
//! Slurm's notation, so that a typo fails in `check`, not as an `sbatch` error after submission.

use super::Checker;
use crate::design::{PUBLISH_JOB, ResourceRequest, STAGE_KINDS, parse_memory_mb, parse_time_seconds};
use crate::error::did_you_mean;
use crate::keys;
use std::collections::BTreeMap;

/// Most cores one stage may ask for.
pub const MAX_CPUS: u32 = 1024;

pub(super) fn check(cx: &mut Checker<'_>) -> BTreeMap<String, ResourceRequest> {
    let mut requests = BTreeMap::new();
    let known = || STAGE_KINDS.iter().copied().chain([PUBLISH_JOB]);
    for (kind, resources) in &cx.study.resources {
        let at = |field: &str| keys!["resources", kind.as_str(), field];
        if !known().any(|k| k == kind) {
            let hint = did_you_mean(kind, known()).map_or_else(
                || format!("stage kinds are {}; `{PUBLISH_JOB}` is the job that publishes", STAGE_KINDS.join(", ")),
                |b| format!("did you mean `{b}`?"),
            );
            cx.err(
                keys!["resources", kind.as_str()],
                format!("`{kind}` is neither a stage kind nor `{PUBLISH_JOB}`"),
                Some(hint),
            );
            continue;
        }
        let mut request = ResourceRequest { cpus: resources.cpus, ..ResourceRequest::default() };
        if let Some(cpus) = resources.cpus
            && !(1..=MAX_CPUS).contains(&cpus)
        {
            cx.err(at("cpus"), format!("cpus = {cpus} must be between 1 and {MAX_CPUS}"), None);
        }
        if let Some(memory) = &resources.memory {
            request.memory_mb = parse_memory_mb(memory);
            if request.memory_mb.is_none() {
                cx.err(
                    at("memory"),
                    format!("memory `{memory}` is not a size Slurm understands"),
                    Some("write a whole number with a unit K, M, G or T, e.g. \"2G\" or \"500M\"".into()),
                );
            }
        }
        if let Some(time) = &resources.time {
            request.time_seconds = parse_time_seconds(time);
            if request.time_seconds.is_none() {
                cx.err(
                    at("time"),
                    format!("time `{time}` is not a wall time Slurm understands"),
                    Some("write HH:MM:SS (e.g. \"00:10:00\"), MM, MM:SS or D-HH:MM:SS, more than zero".into()),
                );
            }
        }
        requests.insert(kind.clone(), request);
    }
    requests
}
