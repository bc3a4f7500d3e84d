//! The page: one HTML file from one template (minijinja, with HTML auto-escaping for every value
//! that is not marked safe; section bodies and SVG are built by this module with escaping done
//! where text enters them). Inline CSS and SVG, raster images as data URIs, no script, no link to
//! anything outside the output folder.

use super::Section;
use super::folder::Folder;
use crate::error::{Error, Result};
use serde::Serialize;

const TEMPLATE: &str = include_str!("report.html.j2");

#[derive(Serialize)]
struct FigureView<'a> {
    name: &'a str,
    caption: &'a str,
    svg: &'a str,
}

#[derive(Serialize)]
struct SectionView<'a> {
    id: &'a str,
    title: &'a str,
    body: &'a str,
    figures: Vec<FigureView<'a>>,
}

pub fn render(folder: &Folder, sections: &[Section]) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("report.html", TEMPLATE).map_err(|e| Error::data(format!("report template: {e}")))?;
    let views: Vec<SectionView<'_>> = sections
        .iter()
        .map(|s| SectionView {
            id: s.id,
            title: &s.title,
            body: &s.body,
            figures: s.figures.iter().map(|f| FigureView { name: &f.name, caption: &f.caption, svg: &f.svg }).collect(),
        })
        .collect();
    let template = env.get_template("report.html").expect("added above");
    template
        .render(minijinja::context! {
            study => folder.lock.study,
            description => folder.study_description().unwrap_or_default(),
            version => folder.lock.neurospec_version,
            sections => views,
        })
        .map_err(|e| Error::data(format!("report template: {e}")))
}
