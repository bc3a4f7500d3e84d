//! `[tables.NAME]`: where each table comes from (a file, the simulator, or the connectome) and
//! which columns it has; then one namespace of columns across tables.

use super::{Checker, ResolvedImaging, ResolvedTable, TableSource, edge_column, preview, session_column};
use crate::error::did_you_mean;
use crate::keys;
use crate::spec::TableSpec;
use crate::tables::read::DEFAULT_MISSING;

pub(super) fn resolve(cx: &mut Checker<'_>, imaging: Option<&ResolvedImaging>) -> Vec<ResolvedTable> {
    let study = cx.study;
    let mut tables = Vec::new();
    for (name, spec) in &study.tables {
        let id_column = spec.id_column.clone().unwrap_or_else(|| study.study.subject_id.clone());
        let missing_values =
            spec.missing_values.clone().unwrap_or_else(|| DEFAULT_MISSING.iter().map(|s| s.to_string()).collect());
        let found = if spec.imaging.is_some() {
            connectome(cx, name, spec, imaging, &id_column)
        } else {
            source(cx, name, spec)
        };
        let Some((source, columns)) = found else { continue };
        if !matches!(source, TableSource::Imaging) && !columns.contains(&id_column) {
            let hint = match did_you_mean(&id_column, columns.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`? set `id_column` on the table or `study.subject_id`"),
                None if columns.len() < 2 => crate::tables::read::preview(&columns),
                None => format!("set `id_column` on the table; its columns start {}", preview(&columns)),
            };
            cx.err(
                keys!["tables", name.as_str()],
                format!("table `{name}` has no subject id column `{id_column}`"),
                Some(hint),
            );
        }
        tables.push(ResolvedTable { name: name.clone(), source, id_column, missing_values, columns });
    }
    tables
}

/// The connectome pseudo-table: the id column and one column per edge and session.
fn connectome(
    cx: &mut Checker<'_>,
    name: &str,
    spec: &TableSpec,
    imaging: Option<&ResolvedImaging>,
    id_column: &str,
) -> Option<(TableSource, Vec<String>)> {
    let what = spec.imaging.as_deref().unwrap_or_default();
    let here = keys!["tables", name, "imaging"];
    if spec.path.is_some() || spec.simulated.is_some() {
        cx.err(here, format!("table `{name}` needs exactly one of `path`, `simulated` or `imaging`"), None);
        return None;
    }
    if what != "connectome" {
        cx.err(here, format!("unknown imaging table `{what}`"), Some("the imaging table is `connectome`".into()));
        return None;
    }
    let Some(im) = imaging else {
        if cx.study.connectivity.is_none() || cx.study.imaging.is_none() {
            cx.err(here, "the `connectome` table needs [imaging] and [connectivity]".into(), None);
        }
        return None;
    };
    let mut columns = vec![id_column.to_string()];
    for session in im.session_labels() {
        columns.extend(im.edges.iter().map(|(a, b)| session_column(&edge_column(a, b), session)));
    }
    Some((TableSource::Imaging, columns))
}

/// A file table (its header read) or a simulated one (the simulator's column list).
fn source(cx: &mut Checker<'_>, name: &str, spec: &TableSpec) -> Option<(TableSource, Vec<String>)> {
    match (&spec.path, &spec.simulated) {
        (Some(_), Some(_)) | (None, None) => {
            cx.err(
                keys!["tables", name],
                format!("table `{name}` needs exactly one of `path`, `simulated` or `imaging`"),
                Some("`path = \"data/pheno.tsv\"` reads a file; `simulated = \"pheno\"` uses [simulate]".into()),
            );
            None
        }
        (Some(written), None) => {
            let path = cx.loaded.resolve(written);
            let here = keys!["tables", name, "path"];
            if path.is_dir() {
                cx.err(
                    here,
                    format!("table file `{written}` is a folder, not a file"),
                    Some("name the table file inside it".into()),
                );
                return None;
            }
            if !path.is_file() {
                cx.err(
                    here,
                    format!("table file `{written}` does not exist (looked for {})", path.display()),
                    Some("paths are relative to the study file".into()),
                );
                return None;
            }
            let read = crate::tables::read::format_of(&path, spec.format)
                .and_then(|format| Ok((format, crate::tables::read_header(&path, format)?)));
            match read {
                Ok((format, columns)) => Some((TableSource::File { path, written: written.clone(), format }, columns)),
                Err(e) => {
                    cx.err(here, e.to_string(), None);
                    None
                }
            }
        }
        (None, Some(sim_name)) => {
            let here = keys!["tables", name, "simulated"];
            let Some(simulate) = &cx.study.simulate else {
                cx.err(here, format!("table `{name}` is simulated but the study has no [simulate] section"), None);
                return None;
            };
            match crate::sim::columns(simulate.preset, sim_name) {
                Some(columns) => Some((TableSource::Simulated { name: sim_name.clone() }, columns)),
                None => {
                    let known = crate::sim::tables(simulate.preset);
                    cx.err(
                        here,
                        format!("the `{}` simulator writes no table `{sim_name}`", simulate.preset.name()),
                        Some(format!("it writes: {}", known.join(", "))),
                    );
                    None
                }
            }
        }
    }
}

/// One namespace of columns across tables (the id column is shared).
pub(super) fn namespace(cx: &mut Checker<'_>, tables: &[ResolvedTable]) {
    for table in tables {
        for column in table.columns.iter().filter(|c| **c != table.id_column) {
            if let Some(other) = cx.column_table.insert(column.clone(), table.name.clone()) {
                cx.err(
                    keys!["tables", table.name.as_str()],
                    format!("column `{column}` is in both table `{other}` and table `{}`", table.name),
                    Some("column names must be unique across tables; rename one of them".into()),
                );
            }
        }
    }
    cx.sync_columns();
}
