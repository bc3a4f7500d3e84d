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
