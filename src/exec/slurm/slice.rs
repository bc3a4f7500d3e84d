//! What one array task reads: its own slice of the plan, not the whole plan.
//!
//! At 40,000 runs the whole plan is 13.7 MB of JSON; each of a thousand tasks parsing it would
//! spend more time loading the plan than running its 40 small stages. [`write`] therefore
//! writes, per array, one file `tasks/<array>.slices` holding every task's [`TaskSlice`] (its
//! stages, the outputs the plan needs of each, and the id and submission-time fingerprint of
//! every stage they read), and [`read`] reads back one task's slice alone:
//!
//! ```text
//! <offset of task 0>\n <offset of task 1>\n … <offset of task n-1>\n <end>\n     16 hex digits each
//! {slice of task 0}{slice of task 1}…{slice of task n-1}                        JSON texts
//! ```
//!
//! Offsets are from the start of the file (the first one, the length of the offset lines, also
//! gives the number of tasks); a task reads the first offset, the two at `17 × task`, then its
//! own byte range: three small reads, whatever the size of the plan. One file per array (not per task)
//! keeps a submission at one synced write per array.

use super::Folder;
use crate::error::{Error, Result};
use crate::plan::{Node, Plan, Source};
use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Width of one offset line: 16 hex digits and a newline.
const OFFSET_LINE: u64 = 17;

/// One task's part of a submitted plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSlice {
    /// The task's stages, in plan order.
    pub stages: Vec<SliceStage>,
    /// Every stage the task's stages read (node index → id and, when it was cached at
    /// submission, its fingerprint; otherwise its task's `done` marker has it).
    pub upstream: BTreeMap<usize, Upstream>,
}

/// One stage of a task: the plan's node (inputs name other stages by their index in the plan).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SliceStage {
    pub index: usize,
    pub node: Node,
    /// The outputs the plan publishes or passes on (a cached record must hold them).
    pub required: Vec<String>,
}

impl PartialEq for SliceStage {
    fn eq(&self, other: &Self) -> bool {
        // `Node` has no `PartialEq`; its JSON text is what the task reads.
        self.index == other.index
            && self.required == other.required
            && serde_json::to_string(&self.node).ok() == serde_json::to_string(&other.node).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub id: String,
    pub cached: Option<String>,
}

/// The slice of the task that runs `nodes` (indices into the plan).
pub fn of(plan: &Plan, nodes: &[usize], cached: &BTreeMap<usize, String>) -> TaskSlice {
    let mut upstream = BTreeMap::new();
    let stages = nodes
        .iter()
        .map(|&n| {
            let i = NodeIndex::new(n);
            for d in plan.dependencies(i) {
                let (id, fp) = (plan.node(d).id.clone(), cached.get(&d.index()).cloned());
                upstream.insert(d.index(), Upstream { id, cached: fp });
            }
            SliceStage { index: n, node: plan.node(i).clone(), required: crate::exec::required_outputs(plan, i) }
        })
        .collect();
    TaskSlice { stages, upstream }
}

/// The stages a slice stage reads (indices into the plan), sorted.
pub fn dependencies(node: &Node) -> Vec<usize> {
    let mut deps: Vec<usize> = node
        .inputs
        .iter()
        .filter_map(|(_, s)| match s {
            Source::Stage { node, .. } => Some(node.index()),
            _ => None,
        })
        .collect();
    deps.sort();
    deps.dedup();
    deps
}

fn path(folder: &Folder, array: usize) -> PathBuf {
    folder.dir.join("tasks").join(format!("{array}.slices"))
}

/// Write the slices of one array's tasks (see the module doc).
pub fn write(folder: &Folder, array: usize, slices: &[TaskSlice]) -> Result<()> {
    let texts: Vec<Vec<u8>> = slices.iter().map(|s| serde_json::to_vec(s).expect("slices serialise")).collect();
    let mut at = OFFSET_LINE * (texts.len() as u64 + 1);
    let mut bytes = Vec::with_capacity(at as usize + texts.iter().map(Vec::len).sum::<usize>());
    for text in &texts {
        bytes.extend_from_slice(format!("{at:016x}\n").as_bytes());
        at += text.len() as u64;
    }
    bytes.extend_from_slice(format!("{at:016x}\n").as_bytes());
    for text in &texts {
        bytes.extend_from_slice(text);
    }
    let path = path(folder, array);
    crate::store::write_atomic_in(path.parent().expect("tasks/"), &path, &bytes)
}

/// Read the slice of task `task` of array `array`, and how many bytes that took.
pub fn read(folder: &Folder, array: usize, task: usize) -> Result<(TaskSlice, u64)> {
    let path = path(folder, array);
    let damaged =
        |why: &str| Error::data(format!("{}: task {task}'s slice {why}; submit the study again", path.display()));
    let mut file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    let offset = |line: &[u8]| -> Option<u64> {
        (line[16] == b'\n').then_some(())?;
        u64::from_str_radix(std::str::from_utf8(&line[..16]).ok()?, 16).ok()
    };
    // The first offset is the length of the offset lines: it says how many tasks there are.
    let mut first = [0u8; OFFSET_LINE as usize];
    file.read_exact(&mut first).map_err(|_| damaged("has no offsets (the file is cut short)"))?;
    let tasks = offset(&first).ok_or_else(|| damaged("has an unreadable offset"))? / OFFSET_LINE;
    if task as u64 + 1 >= tasks {
        return Err(damaged(&format!("is not in the file (it holds {} tasks)", tasks.saturating_sub(1))));
    }
    let mut offsets = [0u8; 2 * OFFSET_LINE as usize];
    file.seek(SeekFrom::Start(OFFSET_LINE * task as u64)).map_err(|e| Error::io(&path, e))?;
    file.read_exact(&mut offsets).map_err(|_| damaged("is not in the file (the file is cut short)"))?;
    let (Some(start), Some(end)) = (offset(&offsets[..17]), offset(&offsets[17..])) else {
        return Err(damaged("has an unreadable offset"));
    };
    if start > end || end > len {
        return Err(damaged("points outside the file"));
    }
    let mut text = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(|e| Error::io(&path, e))?;
    file.read_exact(&mut text).map_err(|e| Error::io(&path, e))?;
    let slice = serde_json::from_slice(&text).map_err(|e| damaged(&format!("is unreadable ({e})")))?;
    Ok((slice, 3 * OFFSET_LINE + text.len() as u64))
}
