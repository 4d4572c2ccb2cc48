//! The operator crate's layers, and the test that its imports go down only:
//! [`LAYERS`] is the one table of `src/`'s modules by layer, bottom first (the
//! core is its own crate, beneath them all). The check is the core's
//! (`crates/core/tests/layering/`); ARCHITECTURE.md's "Layers" block is this
//! table printed, and the test compares the two.

use std::collections::BTreeSet;
use std::path::Path;

#[path = "../crates/core/tests/layering/mod.rs"]
mod layering;

use layering::{Layers, diagram, layer_of};

/// `src/`'s modules by layer, bottom first, with what each layer holds.
const LAYERS: Layers = &[
    (
        &["events", "token_review", "clock"],
        "Kubernetes Events with their series; TokenReviews for callers; the process's clock",
    ),
    (
        &["api"],
        "the CRD types, one file per kind, and their core views",
    ),
    (
        &["index"],
        "one watch per kind → the per-namespace index and stores",
    ),
    (
        &["metrics", "judge"],
        "process metrics; the one pipeline that judges a change",
    ),
    (&["admin"], "/healthz /readyz /metrics /activity"),
    (
        &["controller", "webhook"],
        "observe → pure desired status → apply; admission (/validate, /mutate)",
    ),
    (
        &["decision", "cli"],
        "the decision service; the command line over manifests or the cluster",
    ),
    (
        &["operator"],
        "the processes: flags per component, the shared index, shutdown",
    ),
];

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

#[test]
fn every_module_imports_only_from_layers_below_its_own() {
    let report = layering::report(LAYERS, src());
    assert!(
        report.is_empty(),
        "imports that do not go down (move the item down, or the module up in LAYERS):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_layers_name_exactly_the_modules_of_lib_rs() {
    let layered: BTreeSet<String> = layer_of(LAYERS).into_keys().map(String::from).collect();
    assert_eq!(layering::declared(src()), layered);
}

#[test]
fn architecture_shows_the_layers() {
    let shown = layering::shown(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "<!-- operator layers: tests/layers.rs -->",
    );
    let expected = diagram(LAYERS);
    assert_eq!(
        shown, expected,
        "ARCHITECTURE.md's operator layers differ from LAYERS; the block should read:\n{expected}"
    );
}
