//! Packing stale stages into arrays, and the plan file.

use super::*;
use crate::plan::Source;
use crate::stages::Kind;

/// `runs` per-run stages → connectome → table.
fn study_shape(runs: usize) -> Plan {
    let mut nodes: Vec<Node> = (0..runs)
        .map(|r| Node {
            id: format!("imaging/sub-{r}"),
            kind: Kind::ImagingRun,
            params: serde_json::json!({ "run": r }),
            seed: None,
            inputs: vec![("bold".into(), Source::Path { path: format!("r{r}").into(), written: format!("r{r}") })],
            publish: vec![],
        })
        .collect();
    let edges =
        (0..runs).map(|r| (format!("edges:{r}"), Source::Stage { node: NodeIndex::new(r), output: "edges".into() }));
    nodes.push(Node {
        id: "connectome".into(),
        kind: Kind::Connectome,
        params: serde_json::json!({}),
        seed: None,
        inputs: edges.collect(),
        publish: vec![],
    });
    let table = Source::Stage { node: NodeIndex::new(runs), output: "table".into() };
    nodes.push(Node {
        id: "table/connectome".into(),
        kind: Kind::LoadTable,
        params: serde_json::json!({}),
        seed: Some(3),
        inputs: vec![("table".into(), table)],
        publish: vec![("table".into(), "connectome.tsv".into())],
    });
    crate::plan::from_nodes(nodes, "out".into(), "h".into(), "s".into()).unwrap()
}

#[test]
fn stale_stages_are_packed_by_level_and_kind_into_bounded_arrays_chained_by_their_inputs() {
    let plan = study_shape(10);
    let stale: Vec<NodeIndex> = plan.order.clone();
    let mut requested = BTreeMap::new();
    requested.insert("imaging-run".to_string(), ResourceRequest { cpus: Some(2), ..Default::default() });
    let arrays = arrays(&plan, &stale, 3, &requested);
    let shape: Vec<(&str, usize, Vec<usize>, Vec<usize>)> = arrays
        .iter()
        .map(|a| (a.kind.as_str(), a.level, a.tasks.iter().map(Vec::len).collect(), a.after.clone()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("imaging-run", 0, vec![4, 3, 3], vec![]),
            ("connectome", 1, vec![1], vec![0]),
            ("load-table", 2, vec![1], vec![1]),
        ]
    );
    assert_eq!(arrays[0].tasks.concat(), (0..10).collect::<Vec<_>>(), "every run once, in plan order");
    assert_eq!(arrays[0].resources, Resolved { cpus: 2, ..default_resources("imaging-run") });
    // Only the stale part is submitted: cached runs are left out, and the connectome's array
    // no longer waits for anything.
    let only_downstream: Vec<NodeIndex> = plan.order[10..].to_vec();
    let arrays = super::arrays(&plan, &only_downstream, 3, &BTreeMap::new());
    assert_eq!(arrays.iter().map(|a| a.after.clone()).collect::<Vec<_>>(), vec![vec![], vec![0]]);
}

#[test]
fn a_written_plan_reads_back_with_the_same_nodes_wiring_and_order() {
    let plan = study_shape(5);
    let text = serde_json::to_vec(&PlanFile::of(&plan)).unwrap();
    let back = serde_json::from_slice::<PlanFile>(&text).unwrap().into_plan(Path::new("plan.json")).unwrap();
    assert_eq!(back.order, plan.order);
    assert_eq!(serde_json::to_vec(&PlanFile::of(&back)).unwrap(), text);
    for &i in &plan.order {
        assert_eq!(back.dependencies(i), plan.dependencies(i));
        assert_eq!(
            crate::plan::fingerprint::fingerprint(back.node(i), &[]),
            crate::plan::fingerprint::fingerprint(plan.node(i), &[])
        );
    }
}

#[test]
fn each_task_reads_back_exactly_its_own_slice_and_a_damaged_file_is_named() {
    let plan = study_shape(10);
    let stale: Vec<NodeIndex> = plan.order[2..].to_vec();
    let cached: BTreeMap<usize, String> = [(0, "fp0".to_string()), (1, "fp1".to_string())].into();
    let arrays = arrays(&plan, &stale, 3, &BTreeMap::new());
    let dir = tempfile::tempdir().unwrap();
    let folder = Folder::new(dir.path());
    for (a, array) in arrays.iter().enumerate() {
        let slices: Vec<_> = array.tasks.iter().map(|nodes| slice::of(&plan, nodes, &cached)).collect();
        slice::write(&folder, a, &slices).unwrap();
    }
    for (a, array) in arrays.iter().enumerate() {
        for (t, nodes) in array.tasks.iter().enumerate() {
            let (read, bytes) = slice::read(&folder, a, t).unwrap();
            assert_eq!(read, slice::of(&plan, nodes, &cached));
            assert_eq!(read.stages.iter().map(|s| s.index).collect::<Vec<_>>(), *nodes);
            let file = std::fs::metadata(dir.path().join(format!("tasks/{a}.slices"))).unwrap().len();
            assert!(array.tasks.len() == 1 || bytes < file, "a task reads only its part of the file");
        }
    }
    // The connectome's task knows every run it reads, with the fingerprints cached at submission.
    let (connectome, _) = slice::read(&folder, 1, 0).unwrap();
    assert_eq!(connectome.stages[0].node.id, "connectome");
    assert_eq!(connectome.stages[0].required, vec!["table".to_string()]);
    assert_eq!(connectome.upstream.len(), 10);
    assert_eq!(connectome.upstream[&0], slice::Upstream { id: "imaging/sub-0".into(), cached: Some("fp0".into()) });
    assert_eq!(connectome.upstream[&5].cached, None, "its task's done marker has it");
    let table = slice::read(&folder, 2, 0).unwrap().0;
    assert_eq!(table.stages[0].required, vec!["table".to_string()], "published");
    // No such task, and a damaged offset: errors that name the file and what to do.
    let missing = slice::read(&folder, 1, 5).unwrap_err().to_string();
    assert!(missing.contains("1.slices: task 5's slice is not in the file") && missing.contains("submit"), "{missing}");
    let path = dir.path().join("tasks/0.slices");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] = b'z';
    std::fs::write(&path, bytes).unwrap();
    let damaged = slice::read(&folder, 0, 0).unwrap_err().to_string();
    assert!(damaged.contains("0.slices: task 0's slice has an unreadable offset"), "{damaged}");
}

/// A cluster that records what is submitted to it.
#[derive(Default)]
struct Recording {
    jobs: std::sync::Mutex<Vec<cluster::Job>>,
}

impl Cluster for Recording {
    fn max_array_size(&self) -> Result<usize> {
        Ok(1001)
    }
    fn sbatch(&self, job: &cluster::Job, _: &SubmitOptions) -> Result<String> {
        let mut jobs = self.jobs.lock().unwrap();
        jobs.push(job.clone());
        Ok(format!("{}", 100 + jobs.len()))
    }
    fn cancel(&self, _: &[String]) -> Result<()> {
        Ok(())
    }
    fn queue(&self, _: &[String]) -> Result<BTreeMap<String, cluster::QueueState>> {
        Ok(BTreeMap::new())
    }
}

#[test]
fn the_publish_job_asks_for_resources_publish_and_each_array_has_its_slices() {
    let mut plan = study_shape(4);
    let dir = tempfile::tempdir().unwrap();
    for r in 0..4 {
        let path = dir.path().join(format!("r{r}"));
        std::fs::write(&path, format!("run {r}")).unwrap();
        plan.graph[NodeIndex::new(r)].inputs = vec![("bold".into(), Source::Path { path, written: format!("r{r}") })];
    }
    let store = Store::open(&dir.path().join("cache")).unwrap();
    let mut resources = BTreeMap::new();
    resources.insert(
        PUBLISH_JOB.to_string(),
        ResourceRequest { memory_mb: Some(1234), time_seconds: Some(600), ..Default::default() },
    );
    let options = SubmitOptions { resources, study_file: dir.path().join("s.toml"), ..Default::default() };
    let cluster = Recording::default();
    let Submitted::Jobs { folder, submission, .. } = submit(&plan, &store, &options, &cluster).unwrap() else {
        panic!("nothing is cached yet");
    };
    let jobs = cluster.jobs.into_inner().unwrap();
    let publish = jobs.last().unwrap();
    assert_eq!(
        (publish.name.as_str(), publish.memory_mb, publish.time.as_str()),
        ("neurospec-s-publish", 1234, "0-00:10:00")
    );
    assert_eq!(publish.cpus, default_resources(PUBLISH_JOB).cpus, "unset fields keep the default");
    for (a, array) in submission.arrays.iter().enumerate() {
        for (t, nodes) in array.tasks.iter().enumerate() {
            let (slice, _) = slice::read(&folder, a, t).unwrap();
            assert_eq!(slice.stages.iter().map(|s| s.index).collect::<Vec<_>>(), *nodes);
        }
    }
}
