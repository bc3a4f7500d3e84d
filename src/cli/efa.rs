//! `neurospec efa`: exploratory factor analysis of an item table, with the library the
//! `factors` stage uses (`behaviour::efa`).

use crate::behaviour::efa::{self, Extraction, Rotation, RotationParams, Scores, matrix_tsv};
use crate::error::{Error, Result};
use crate::store::write_atomic_in;
use std::path::{Path, PathBuf};

/// `neurospec efa`: the factor model of `[factors]`, on one table.
#[derive(clap::Args)]
pub struct EfaArgs {
    /// Item table (header row; every other column is an item).
    #[arg(long)]
    pub data: PathBuf,
    /// The subject id column (not an item; it names the rows of scores.tsv). Default: a column
    /// named participant_id, subject, sub or id (any case), else a first column of unique
    /// non-numeric or `sub-` values; `--id-column none` treats every column as an item.
    #[arg(long)]
    pub id_column: Option<String>,
    /// Number of factors: a whole number, `parallel` (Horn's parallel analysis) or `map`
    /// (Velicer's MAP), as `[factors] count` in a study.
    #[arg(long, default_value = "parallel")]
    pub factors: String,
    /// Extraction: minimum residual, maximum likelihood or principal axes.
    #[arg(long, value_enum, default_value_t = Extraction::MinRes)]
    pub method: Extraction,
    /// Rotation of the extracted loadings (GPArotation's criteria).
    #[arg(long, value_enum, default_value_t = Rotation::Oblimin)]
    pub rotation: Rotation,
    /// Oblimin γ (read only with --rotation oblimin).
    #[arg(long, default_value_t = 0.0)]
    pub gamma: f64,
    /// Geomin δ (read only with --rotation geomin or geomin_ort).
    #[arg(long, default_value_t = efa::GEOMIN_DELTA)]
    pub delta: f64,
    /// Target matrix for --rotation target_ort / target_obl: TSV with a header (item, then one
    /// column per factor) and one row per item; NA leaves a cell unspecified.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Factor score method (Thurstone regression, Bartlett, ten Berge).
    #[arg(long, value_enum, default_value_t = Scores::Regression)]
    pub scores: Scores,
    /// Simulated data sets for parallel analysis.
    #[arg(long, default_value_t = 1000)]
    pub sims: usize,
    /// Seed of the parallel analysis' simulated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (loadings.tsv, phi.tsv, scores.tsv, fit.json).
    #[arg(long)]
    pub out: PathBuf,
}

/// `--factors`: a number, `parallel` or `map`.
fn count(text: &str) -> Result<efa::Count> {
    match text {
        "parallel" => Ok(efa::Count::Parallel),
        "map" => Ok(efa::Count::Map),
        k => k
            .parse::<usize>()
            .map(efa::Count::Fixed)
            .map_err(|_| Error::Usage(format!("--factors `{k}`: a number, `parallel` or `map`"))),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    write_atomic_in(dir, &dir.join(name), text.as_bytes())
}

/// `--target`: required by the target rotations and read only by them.
fn target(args: &EfaArgs, items: &[String], count: efa::Count) -> Result<Option<crate::stats::dense::M>> {
    let name =
        |r: Rotation| clap::ValueEnum::to_possible_value(&r).map(|v| v.get_name().to_string()).unwrap_or_default();
    match (&args.target, args.rotation.uses_target()) {
        (None, false) => Ok(None),
        (None, true) => Err(Error::Usage(format!("--rotation {} needs --target FILE", name(args.rotation)))),
        (Some(_), false) => Err(Error::Usage(format!(
            "--target is read only by --rotation target_ort or target_obl, not {}",
            name(args.rotation)
        ))),
        (Some(path), true) => {
            let efa::Count::Fixed(k) = count else {
                return Err(Error::Usage("a target rotation needs --factors set to the target's column count".into()));
            };
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            crate::behaviour::rotations::parse_target(&text, items, Some(k))
                .map(Some)
                .map_err(|e| Error::data(format!("{}: {e}", path.display())))
        }
    }
}

pub fn run(args: &EfaArgs) -> Result<()> {
    let id_column = match args.id_column.as_deref() {
        Some("none") => None,
        Some(named) => Some(named.to_string()),
        None => crate::tables::read::detect_id_column(&args.data)?,
    };
    if args.id_column.is_none()
        && let Some(id) = &id_column
    {
        eprintln!("{}: `{id}` is the id column (not an item); --id-column to choose another", args.data.display());
    }
    let (names, ids, values) = crate::tables::read::read_items(&args.data, id_column.as_deref())?;
    let (n, p) = (ids.len(), names.len());
    let count = count(&args.factors)?;
    let target = target(args, &names, count)?;
    let request = efa::Request {
        count,
        method: args.method,
        rotation: args.rotation,
        rotation_params: RotationParams { gamma: args.gamma, delta: args.delta, target },
        scores: args.scores,
        simulations: args.sims,
        seed: args.seed,
    };
    let analysis = efa::analyse(&values, n, p, &names, &request)
        .map_err(|e| Error::data(format!("{}: {e}", args.data.display())))?;
    let k = analysis.k;
    let scores = efa::standardise_with(&values, n, p, &analysis.means, &analysis.sds).mul(&analysis.weights);
    let factors: Vec<String> = (1..=k).map(|f| format!("F{f}")).collect();
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    write(&args.out, "loadings.tsv", &matrix_tsv("item", &names, &factors, &analysis.fit.loadings))?;
    write(&args.out, "phi.tsv", &matrix_tsv("factor", &factors, &factors, &analysis.fit.phi))?;
    write(&args.out, "scores.tsv", &matrix_tsv(id_column.as_deref().unwrap_or("row"), &ids, &factors, &scores))?;
    write(&args.out, "fit.json", &(serde_json::to_string_pretty(&analysis.summary).expect("json") + "\n"))?;
    eprintln!(
        "{}: {k} factors ({:?}, {:?}) from {n} rows × {p} items → {}",
        args.data.display(),
        args.method,
        args.rotation,
        args.out.display()
    );
    Ok(())
}
