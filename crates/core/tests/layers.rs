//! The core's layers, and the test that its imports go down only.
//!
//! [`LAYERS`] is the one table of the core's modules by layer, bottom first.
//! A module may name (`crate::m`, `super::m`) only modules of a layer below
//! its own; a file under `src/<m>/` belongs to module `m`. The sources are
//! lexed (comments and string literals are not references), so a reference
//! inside a macro call counts too. ARCHITECTURE.md's core diagram is this
//! table printed ([`diagram`]); the test compares the two.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// The core's modules by layer, bottom first, with what each layer holds.
const LAYERS: &[(&[&str], &str)] = &[
    (
        &["catalog", "bounds"],
        "services and domains, what each offers; the bounds of admission's text",
    ),
    (
        &["privilege"],
        "privilege sets: parse, merge, covers, missing",
    ),
    (&["builtin"], "built-in groups and templates, lifetime caps"),
    (
        &["model"],
        "the organization's objects as plain data, the advisor's settings",
    ),
    (
        &["effective", "apikey"],
        "who holds what and why; an API key's lifecycle",
    ),
    (
        &["bindings", "platform"],
        "who set each binding; the platform's privilege format",
    ),
    (&["rules"], "the admission rules, one file each in rules/"),
    (
        &["change", "references"],
        "a change overlaid on the state; names that do not resolve",
    ),
    (&["advice"], "the least-privilege findings"),
    (
        &["warnings", "decision"],
        "an allowed change's warnings; may a principal do this",
    ),
];

fn layer_of() -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (i, (modules, _)) in LAYERS.iter().enumerate() {
        for m in *modules {
            assert!(out.insert(*m, i).is_none(), "{m} is in two layers");
        }
    }
    out
}

/// The table as ARCHITECTURE.md shows it, top layer first.
fn diagram() -> String {
    let width = LAYERS
        .iter()
        .map(|(m, _)| m.join(", ").len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, (modules, what)) in LAYERS.iter().enumerate().rev() {
        out.push_str(&format!("{i}  {:width$}  {what}\n", modules.join(", ")));
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to
/// (`None` for `lib.rs`).
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
                None if stem == "lib" => None,
                None => Some(stem),
            };
            out.push((path, module));
        }
    }
}

/// The names that `crate::` and `super::` paths in `code` start with
/// (`super::super::x` and `crate::{x, y::Z}` give `x` and `y`).
fn referenced(code: &str) -> BTreeSet<String> {
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
fn upward_references() -> Vec<(String, String, String)> {
    let layers = layer_of();
    let mut files = Vec::new();
    sources(&src(), None, &mut files);
    let mut out = Vec::new();
    for (path, module) in files {
        let Some(module) = module else { continue };
        let own = *layers
            .get(module.as_str())
            .unwrap_or_else(|| panic!("module {module} is in no layer of LAYERS"));
        let code = std::fs::read_to_string(&path).unwrap();
        for name in referenced(&code) {
            if name == module {
                continue;
            }
            if let Some(&theirs) = layers.get(name.as_str())
                && theirs >= own
            {
                let file = path.strip_prefix(src()).unwrap().display().to_string();
                out.push((file, module.clone(), name));
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_from_layers_below_its_own() {
    let found = upward_references();
    let report: Vec<String> = found
        .iter()
        .map(|(file, module, name)| {
            format!(
                "src/{file}: {module} (layer {}) names {name} (layer {})",
                layer_of()[module.as_str()],
                layer_of()[name.as_str()]
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "imports that do not go down (move the item down, or the module up in LAYERS):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_layers_name_exactly_the_modules_of_lib_rs() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let layered: BTreeSet<&str> = layer_of().into_keys().collect();
    assert_eq!(declared, layered);
}

#[test]
fn architecture_shows_the_layers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let expected = diagram();
    let shown = doc
        .split("<!-- core layers: crates/core/tests/layers.rs -->\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md holds the core's layers after the marker");
    assert_eq!(
        shown, expected,
        "ARCHITECTURE.md's core layers differ from LAYERS; the block should read:\n{expected}"
    );
}

/// The lexer sees paths, in macros too, and not comments or strings.
#[test]
fn references_are_read_from_code_only() {
    let code = r#"
        use crate::{model::{A, B}, catalog, self};
        use super::super::effective::X;
        // crate::advice in a comment
        /// [`crate::warnings`] in a doc comment
        const S: &str = "crate::rules in a string";
        fn f() { json!({"enum": crate::apikey::IDS}); let _ = super::privilege::parse; }
    "#;
    let found: Vec<String> = referenced(code).into_iter().collect();
    assert_eq!(
        found,
        [
            "apikey",
            "catalog",
            "effective",
            "model",
            "privilege",
            "self"
        ]
    );
}

/// A reference upward is reported (the check can fail).
#[test]
fn an_upward_reference_is_found() {
    let layers = layer_of();
    let refs = referenced("fn f() -> crate::advice::Settings { todo!() }");
    let upward: Vec<&String> = refs
        .iter()
        .filter(|n| layers.get(n.as_str()) >= Some(&layers["model"]))
        .collect();
    assert_eq!(upward, ["advice"]);
}
