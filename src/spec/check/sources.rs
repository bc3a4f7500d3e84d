//! `[study] sources`: each a DOI (`10.PREFIX/SUFFIX`, `doi:` optional) or a web address
//! (`http(s)://…`), or a `{ name, url, doi }` table with at least one of them.

use super::Checker;
use crate::design::{SourceDataset, is_doi, is_url};
use crate::keys;

pub(super) fn check(cx: &mut Checker<'_>) {
    let sources = &cx.study.study.sources;
    for (i, source) in sources.iter().enumerate() {
        match source {
            SourceDataset::Link(text) if !is_doi(text) && !is_url(text) => cx.err(
                keys!["study", "sources", i],
                format!("`{text}` is neither a DOI nor a web address"),
                Some("write a DOI as `10.18112/openneuro.ds000030.v1.0.0` or a URL starting with https://".into()),
            ),
            SourceDataset::Link(_) => {}
            SourceDataset::Entry(entry) => {
                if entry.url.is_none() && entry.doi.is_none() {
                    cx.err(
                        keys!["study", "sources", i],
                        "a source needs a `doi` or a `url`".into(),
                        Some("add `doi = \"10.…/…\"` or `url = \"https://…\"`".into()),
                    );
                }
                if let Some(doi) = entry.doi.as_deref().filter(|d| !is_doi(d)) {
                    cx.err(
                        keys!["study", "sources", i, "doi"],
                        format!("`{doi}` is not a DOI"),
                        Some(
                            "a DOI looks like `10.18112/openneuro.ds000030.v1.0.0` (no https://doi.org/ in front)"
                                .into(),
                        ),
                    );
                }
                if let Some(url) = entry.url.as_deref().filter(|u| !is_url(u)) {
                    cx.err(
                        keys!["study", "sources", i, "url"],
                        format!("`{url}` is not a web address"),
                        Some("write the URL with http:// or https://".into()),
                    );
                }
            }
        }
    }
}
