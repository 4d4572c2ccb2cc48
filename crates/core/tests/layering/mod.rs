//! Checks that a crate's modules import only downward, for the core
//! (`crates/core/tests/layers.rs`) and the operator crate (`tests/layers.rs`):
//! each has one table of its modules by layer, bottom first. A module may name
//! (`crate::m`, `super::m`) only modules of a layer below its own; a file under
//! `src/<m>/` belongs to module `m`. The sources are lexed (comments and string
//! literals are not references), so a reference inside a macro call counts too.
//! ARCHITECTURE.md shows each table printed ([`diagram`]) after a marker.
#![allow(dead_code)] // each crate's test uses what it needs

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Modules by layer, bottom first, with what each layer holds.
pub type Layers = &'static [(&'static [&'static str], &'static str)];

pub fn layer_of(layers: Layers) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (i, (modules, _)) in layers.iter().enumerate() {
        for m in *modules {
            assert!(out.insert(*m, i).is_none(), "{m} is in two layers");
        }
    }
    out
}

/// The table as ARCHITECTURE.md shows it, top layer first.
pub fn diagram(layers: Layers) -> String {
    let width = layers
        .iter()
        .map(|(m, _)| m.join(", ").len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, (modules, what)) in layers.iter().enumerate().rev() {
        out.push_str(&format!("{i}  {:width$}  {what}\n", modules.join(", ")));
    }
    out
}

/// The block of ARCHITECTURE.md (at the repository's root, `root`) after `marker`.
pub fn shown(root: &Path, marker: &str) -> String {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    doc.split(&format!("{marker}\n```text\n"))
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("ARCHITECTURE.md holds a block after {marker}"))
        .to_string()
}

/// The modules `lib.rs` declares (`pub mod x;`).
pub fn declared(src: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to
/// (`None` for `lib.rs` and `main.rs`).
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(PathBuf, Option<String>)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            sources(&path, Some(top.unwrap_or(&stem)), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match top {
                Some(t) => Some(t.to_string()),
                None if stem == "lib" || stem == "main" => None,
                None => Some(stem),
            };
            out.push((path, module));
        }
    }
}

/// The names that `crate::` and `super::` paths in `code` start with
/// (`super::super::x` and `crate::{x, y::Z}` give `x` and `y`).
pub fn referenced(code: &str) -> BTreeSet<String> {
    let stream = TokenStream::from_str(code).expect("the source lexes");
    let mut out = BTreeSet::new();
    walk(stream, &mut out);
    out
}

fn walk(stream: TokenStream, out: &mut BTreeSet<String>) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let path_sep = |i: usize| {
        matches!((tokens.get(i), tokens.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':')
    };
    let is_ident =
        |i: usize, name: &str| matches!(tokens.get(i), Some(TokenTree::Ident(x)) if x == name);
    let mut i = 0;
    while i < tokens.len() {
        if (is_ident(i, "crate") || is_ident(i, "super")) && path_sep(i + 1) {
            let mut j = i + 3;
            while is_ident(j, "super") && path_sep(j + 1) {
                j += 3;
            }
            match tokens.get(j) {
                Some(TokenTree::Ident(x)) => {
                    out.insert(x.to_string());
                }
                Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                    // `crate::{a, b::C}`: the first name of each item.
                    let mut first = true;
                    for t in g.stream() {
                        match t {
                            TokenTree::Ident(x) if first => {
                                out.insert(x.to_string());
                                first = false;
                            }
                            TokenTree::Punct(p) if p.as_char() == ',' => first = true,
                            _ => first = false,
                        }
                    }
                }
                _ => {}
            }
            i = j;
            continue;
        }
        if let TokenTree::Group(g) = &tokens[i] {
            walk(g.stream(), out);
        }
        i += 1;
    }
}

/// Each reference from a module to one of its own layer or above:
/// `(file, module, referenced module)`.
pub fn upward_references(layers: Layers, src: &Path) -> Vec<(String, String, String)> {
    let layer = layer_of(layers);
    let mut files = Vec::new();
    sources(src, None, &mut files);
    let mut out = Vec::new();
    for (path, module) in files {
        let Some(module) = module else { continue };
        let own = *layer
            .get(module.as_str())
            .unwrap_or_else(|| panic!("module {module} is in no layer of the table"));
        let code = std::fs::read_to_string(&path).unwrap();
        for name in referenced(&code) {
            if name == module {
                continue;
            }
            if let Some(&theirs) = layer.get(name.as_str())
                && theirs >= own
            {
                let file = path.strip_prefix(src).unwrap().display().to_string();
                out.push((file, module.clone(), name));
            }
        }
    }
    out
}

/// The report of [`upward_references`], one line each.
pub fn report(layers: Layers, src: &Path) -> Vec<String> {
    let layer = layer_of(layers);
    upward_references(layers, src)
        .iter()
        .map(|(file, module, name)| {
            format!(
                "src/{file}: {module} (layer {}) names {name} (layer {})",
                layer[module.as_str()],
                layer[name.as_str()]
            )
        })
        .collect()
}
