//! The core's layers, and the test that its imports go down only.
//!
//! [`LAYERS`] is the one table of the core's modules by layer, bottom first;
//! the check itself is `layering/` (shared with the operator crate's
//! `tests/layers.rs`). ARCHITECTURE.md's core diagram is this table printed;
//! the test compares the two.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod layering;

use layering::{Layers, diagram, layer_of, referenced};

/// The core's modules by layer, bottom first, with what each layer holds.
const LAYERS: Layers = &[
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
        &["review"],
        "access reviews: a group's review state, suspended memberships",
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
        &["warnings", "decision", "diff"],
        "an allowed change's warnings; may a principal do this; two states side by side",
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_imports_only_from_layers_below_its_own() {
    let report = layering::report(LAYERS, &src());
    assert!(
        report.is_empty(),
        "imports that do not go down (move the item down, or the module up in LAYERS):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_layers_name_exactly_the_modules_of_lib_rs() {
    let layered: BTreeSet<String> = layer_of(LAYERS).into_keys().map(String::from).collect();
    assert_eq!(layering::declared(&src()), layered);
}

#[test]
fn architecture_shows_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shown = layering::shown(&root, "<!-- core layers: crates/core/tests/layers.rs -->");
    let expected = diagram(LAYERS);
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
    let layers = layer_of(LAYERS);
    let refs = referenced("fn f() -> crate::advice::Settings { todo!() }");
    let upward: Vec<&String> = refs
        .iter()
        .filter(|n| layers.get(n.as_str()) >= Some(&layers["model"]))
        .collect();
    assert_eq!(upward, ["advice"]);
}
