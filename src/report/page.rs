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
    // A figure whose marker `<!--figure:NAME-->` is in the body is placed there; the others lead.
    let bodies: Vec<String> = sections
        .iter()
        .map(|s| {
            s.figures.iter().fold(s.body.clone(), |body, f| {
                body.replace(&super::figure_marker(&f.name), &figure_html(&f.name, &f.caption, &f.svg))
            })
        })
        .collect();
    let views: Vec<SectionView<'_>> = sections
        .iter()
        .zip(&bodies)
        .map(|(s, body)| SectionView {
            id: s.id,
            title: &s.title,
            body,
            figures: s
                .figures
                .iter()
                .filter(|f| !s.body.contains(&super::figure_marker(&f.name)))
                .map(|f| FigureView { name: &f.name, caption: &f.caption, svg: &f.svg })
                .collect(),
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

/// The same markup as the template's figure loop.
fn figure_html(name: &str, caption: &str, svg: &str) -> String {
    let name = super::charts::esc(name);
    format!(
        "<figure id=\"fig-{name}\" data-figure=\"{name}\">{svg}<figcaption>{} · <a href=\"figures/{name}.svg\">SVG</a></figcaption></figure>",
        super::charts::esc(caption)
    )
}
