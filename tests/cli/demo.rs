//! The README's main command, `scripts/demo.sh`, run non-interactively
//! (ORGACCESS_DEMO_ONCE=1) in its own work dir and on its own ports, prints the
//! effective privileges the seeds describe.
//!
//! Seed 002: John Smith, in Analytics Viewers (built in) and Limited
//! Administrators, holds Analytics Administrate Allowed, Data Exports Edit,
//! Dimensions Edit, Impersonate Allowed and Named Filters View. An invited
//! member who has not accepted holds nothing.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The script's own timeouts are shorter; this only guards against a hang.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Distinct free loopback ports (bound together, so they differ).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// The lines of one member's block in the MEMBERS section (up to the next member).
fn member_block<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let members = out
        .split_once("\nMEMBERS\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no MEMBERS section in:\n{out}"));
    let members = members.split("\nAPI KEYS").next().unwrap();
    let header = format!("  {name}  ");
    let mut lines = members.lines().skip_while(|l| !l.starts_with(&header));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("member {name} not printed:\n{members}"));
    let mut block = vec![first];
    block.extend(lines.take_while(|l| !l.trim().is_empty()));
    block
}

/// Whether a privilege row `SERVICE DOMAIN LEVEL GRANTED-BY...` is in the block.
fn has_privilege(block: &[&str], service: &str, domain: &str, level: &str) -> bool {
    block.iter().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() >= 4 && cols[0] == service && cols[1] == domain && cols[2] == level
    })
}

#[test]
fn demo_prints_the_seed_privileges() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::Builder::new()
        .prefix("orgaccess-demo-test-")
        .tempdir()
        .expect("temp dir");
    let [webhook_port, admin_port] = free_ports();
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .current_dir(root)
        .env("ORGACCESS_DEMO_ONCE", "1")
        .env("ORGACCESS_DEMO_DIR", work.path())
        .env("ORGACCESS_DEMO_WEBHOOK_PORT", webhook_port.to_string())
        .env("ORGACCESS_DEMO_ADMIN_PORT", admin_port.to_string())
        .env("ORGACCESS_DEMO_BIN", env!("CARGO_BIN_EXE_orgaccess"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running scripts/demo.sh");
    let mut stdout_pipe = child.stdout.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for demo.sh") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            // SIGTERM: the script's trap stops the operator and the control plane.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            std::thread::sleep(Duration::from_secs(15));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "demo.sh did not finish in {TIMEOUT:?}:\n{}\n{}",
                out_reader.join().unwrap(),
                err_reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    assert!(
        status.success(),
        "demo.sh failed ({status}):\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    eprintln!("demo.sh finished in {:?}", started.elapsed());

    let john = member_block(&out, "john-smith");
    assert!(john[0].contains("phase: Active"), "john-smith: {john:#?}");
    for (service, domain, level) in [
        ("Analytics", "Administrate", "Allowed"),
        ("Analytics", "DataExports", "Edit"),
        ("Analytics", "Dimensions", "Edit"),
        ("Analytics", "Impersonate", "Allowed"),
        ("Analytics", "NamedFilters", "View"),
    ] {
        assert!(
            has_privilege(&john, service, domain, level),
            "john-smith lacks {service}/{domain} {level}: {john:#?}"
        );
    }
    // Provenance: Administrate comes from the custom group, Impersonate from the built-in one.
    let granted_by = |domain: &str| {
        john.iter()
            .find(|l| l.split_whitespace().nth(1) == Some(domain))
            .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(
        granted_by("Administrate").contains("limited-administrators"),
        "{john:#?}"
    );
    assert!(
        granted_by("Impersonate").contains("analytics-viewers"),
        "{john:#?}"
    );

    let vendor = member_block(&out, "vendor-dev");
    assert!(
        vendor[0].contains("phase: Pending"),
        "vendor-dev: {vendor:#?}"
    );
    assert!(
        vendor
            .iter()
            .any(|l| l.contains("(no effective privileges)")),
        "vendor-dev should hold nothing: {vendor:#?}"
    );

    let keys = out
        .split_once("\nAPI KEYS")
        .map(|(_, rest)| rest)
        .expect("no API KEYS section");
    let key_row = keys
        .lines()
        .find(|l| l.split_whitespace().next() == Some("public-search"))
        .unwrap_or_else(|| panic!("API key public-search not printed:\n{keys}"));
    assert_eq!(
        key_row.split_whitespace().nth(1),
        Some("Active"),
        "API key row: {key_row}"
    );

    // With the webhook served, the demo shows a refused change.
    if out.contains("\nADMISSION:") {
        assert!(
            out.contains(r#"admission webhook "validate.orgaccess.dev" denied the request"#),
            "the demo's refused change was not refused by the webhook:\n{out}"
        );
    }
}
