//! The fuzzer's corpus (`fuzz/corpus/admission`) replayed as an ordinary test,
//! through the same judging and checks as the fuzz target
//! (`fuzz/fuzz_targets/admission_check.rs`; docs/fuzzing.md): every input the
//! fuzzer kept, and every crash it saved and was fixed (`fuzz/regressions/`),
//! runs on each `cargo test` without the instrumented build. The seed inputs
//! also carry the verdict they must get.

use std::path::Path;

#[path = "../../fuzz/fuzz_targets/admission_check.rs"]
mod admission_check;

/// Each input of `dir`, by file name.
fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_corpus_input_gets_a_bounded_admission_review() {
    let validator = admission_check::validator();
    let mut replayed = 0;
    for dir in ["fuzz/corpus/admission", "fuzz/regressions/admission"] {
        for (name, data) in inputs(&root().join(dir)) {
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                admission_check::check(&validator, &data)
            }));
            assert!(
                answer.is_ok(),
                "{dir}/{name} failed the fuzz target's checks"
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 13, "only {replayed} corpus inputs found");
}

/// The verdict of each seed input, and the rules a denial names: the seeds
/// are requests whose answer is known (most of them built to reach a rule), so
/// a change of the path that flips one shows here.
#[test]
fn the_seed_inputs_get_their_verdicts() {
    let validator = admission_check::validator();
    let dir = root().join("fuzz/corpus/admission");
    let cases: &[(&str, &[&str])] = &[
        (
            "apikey-create.json",
            &[
                "[CatalogValidity] spec.allowedIps[1]",
                "[RequiredPrivileges]",
                "[NoEscalation]",
            ],
        ),
        ("group-create-admin.json", ALLOWED),
        (
            "group-create-undeclared.json",
            &[
                "[CatalogValidity] spec.privileges[0].resources[1].name",
                "[NoEscalation]",
            ],
        ),
        ("group-delete-admins.json", &["[AdministratorsProtected]"]),
        ("group-duplicate.json", ALLOWED),
        (
            "group-update.json",
            &[
                "[CatalogValidity] spec.privileges[0].resources[1].name",
                "[RequiredPrivileges]",
                "[NoEscalation]",
            ],
        ),
        (
            "malformed-uid.json",
            &["malformed request", "not an AdmissionReview"],
        ),
        (
            "member-create.json",
            &[
                "[IdentityClaims] spec.ssoGroups",
                "[RequiredPrivileges]",
                "[NoEscalation] spec.groups",
            ],
        ),
        ("member-update-trusted.json", ALLOWED),
        ("org-second.json", &["already holds Organization 'acme'"]),
        (
            "org-update.json",
            &["[CatalogValidity] spec.invitationLifetimeDays"],
        ),
        ("status.json", ALLOWED),
        (
            "unmapped.json",
            &["malformed request", "unknown variant `Nope`"],
        ),
    ];
    let mut wrong = Vec::new();
    for (file, denial) in cases {
        let data = std::fs::read(dir.join(file)).unwrap();
        let data = orgaccess::webhook::mutate::mutated_review(&validator.policy, &data);
        let review: serde_json::Value = serde_json::from_slice(&validator.handle(&data)).unwrap();
        let allowed = review["response"]["allowed"].as_bool();
        let message = review["response"]["status"]["message"]
            .as_str()
            .unwrap_or("");
        let as_expected = if denial.is_empty() {
            allowed == Some(true)
        } else {
            allowed == Some(false) && denial.iter().all(|d| message.contains(d))
        };
        if !as_expected {
            wrong.push(format!(
                "{file}: allowed {allowed:?} ({message}); want the denial {denial:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const ALLOWED: &[&str] = &[];
