//! Judgements of the core and the admission handler: the rules' tables, the escalation
//! invariants over random organizations, the engine's properties and seed scenarios, and the
//! controller's desired status computed from YAML.
//!
//! One test binary for these modules, so they share one control plane (tests/support)
//! and one build; each module is one subject. Run one with `cargo test --test rules MODULE::`.

#[path = "../generators/mod.rs"]
mod generators;
#[path = "../support/mod.rs"]
mod support;

mod admission;
mod desired_status;
mod diff_props;
mod diff_status;
mod engine_props;
mod engine_seeds;
mod escalation;
mod escalation_invariant;
mod fuzz_corpus;
mod hostile_rules;
mod source_examples;
