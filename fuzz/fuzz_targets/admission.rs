//! Fuzzes the admission path as the webhook runs it: the judging and the
//! checks live in `admission_check.rs`, shared with the test that replays the
//! corpus (`tests/webhook/fuzz_corpus.rs`). The organization is seeded once.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use orgaccess::webhook::Validator;

mod admission_check;

static VALIDATOR: LazyLock<Validator> = LazyLock::new(admission_check::validator);

fuzz_target!(|data: &[u8]| admission_check::check(&VALIDATOR, data));
