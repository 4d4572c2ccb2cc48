//! Metrics every orgaccess process exposes, whatever it runs: the build
//! (`orgaccess_build_info`), the process (`process_*`, read from `/proc` on
//! each scrape), and the two text formats `/metrics` answers in
//! ([`Format`]: OpenMetrics, or the classic Prometheus format on request).
//!
//! The components' own metrics (`orgaccess_controller_*`,
//! `orgaccess_webhook_*`) are registered by each component, every series
//! created at zero up front, so an alert on a rate has data from the start.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

mod reviews;
pub use reviews::ReviewMetrics;

/// The operator's version, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Registers `orgaccess_build_info{version}` (always 1) and the `process_*`
/// metrics. Call once per registry.
pub fn register_process(registry: &mut Registry) {
    let build: Family<BuildLabels, Gauge> = Family::default();
    build
        .get_or_create(&BuildLabels { version: VERSION })
        .set(1);
    registry.register(
        "orgaccess_build_info",
        "The orgaccess build: always 1, labelled with its version",
        build,
    );
    registry.register_collector(Box::new(ProcessCollector));
}

/// `process_*` metrics in the names every Prometheus client library uses,
/// read from `/proc/self` at each scrape (nothing is exported elsewhere than
/// Linux, where the operator runs).
#[derive(Debug)]
struct ProcessCollector;

/// The unit of the times in `/proc/<pid>/stat`: USER_HZ, which the kernel
/// fixes at 100 for user space on every architecture the operator is built for.
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says about this process.
#[derive(Debug)]
struct ProcessStats {
    cpu_seconds: f64,
    start_time_seconds: f64,
    resident_memory_bytes: i64,
    open_fds: i64,
}

impl ProcessStats {
    fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
        parse_proc(&stat, &status, &boot, open_fds)
    }
}

/// Reads utime, stime and starttime from `/proc/self/stat` (fields 14, 15
/// and 22; counted after the command name, which may contain spaces and
/// parentheses), VmRSS from `/proc/self/status` and btime from `/proc/stat`.
fn parse_proc(stat: &str, status: &str, boot: &str, open_fds: i64) -> Option<ProcessStats> {
    let after_command = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the command.
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let (utime, stime, start_ticks) = (field(14)?, field(15)?, field(22)?);
    let rss_kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let boot_time: f64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
        resident_memory_bytes: rss_kib * 1024,
        open_fds,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stats.resident_memory_bytes as f64,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                stats.open_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                stats.start_time_seconds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        // What every namespace's requester cache holds (index::Namespace::requester):
        // bounded by the organizations' data, whatever requests carry.
        let (entries, bytes) = crate::index::requester_cache_usage();
        for (name, help, value) in [
            (
                "orgaccess_requester_cache_entries",
                "Requester views cached by the shared index, every namespace together",
                entries as i64,
            ),
            (
                "orgaccess_requester_cache_bytes",
                "Estimated bytes of the requester views cached by the shared index",
                bytes as i64,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// The exposition format of a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text: the default, and what Prometheus prefers.
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4, for scrapers that ask for
    /// `text/plain` and not OpenMetrics.
    Classic,
}

impl Format {
    /// The format an `Accept` header asks for: classic when `text/plain` is
    /// preferred over (or named without) `application/openmetrics-text`;
    /// OpenMetrics otherwise, including when there is no header.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let (mut openmetrics, mut classic) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or_default().split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" => classic = classic.max(q),
                _ => {}
            }
        }
        if classic > 0.0 && classic > openmetrics {
            Format::Classic
        } else {
            Format::OpenMetrics
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The registry's metrics in this format.
    pub fn encode(self, registry: &Registry) -> Result<String, std::fmt::Error> {
        let mut openmetrics = String::new();
        prometheus_client::encoding::text::encode(&mut openmetrics, registry)?;
        Ok(match self {
            Format::OpenMetrics => openmetrics,
            Format::Classic => openmetrics_to_classic(&openmetrics),
        })
    }
}

/// Rewrites OpenMetrics text as the classic format: no `# EOF` or `# UNIT`;
/// a counter's HELP and TYPE name its sample (`x_total`), an info metric is a
/// gauge named `x_info`, `unknown` is `untyped`. Samples are the same.
fn openmetrics_to_classic(text: &str) -> String {
    let types: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let classic_name = |name: &str| -> String {
        match types.get(name) {
            Some(&"counter") => format!("{name}_total"),
            Some(&"info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((name, help)) = line.strip_prefix("# HELP ").and_then(|l| l.split_once(' ')) {
            out.push_str(&format!("# HELP {} {help}\n", classic_name(name)));
        } else if let Some((name, kind)) =
            line.strip_prefix("# TYPE ").and_then(|l| l.split_once(' '))
        {
            let kind = match kind {
                "info" => "gauge",
                "unknown" | "stateset" | "gaugehistogram" => "untyped",
                other => other,
            };
            out.push_str(&format!("# TYPE {} {kind}\n", classic_name(name)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `orgaccess_advice_findings{finding,severity}`: the number of findings of
/// each id in every organization together, as the controller last reviewed
/// them (the same findings as the Organizations' `status.advice`); with
/// `namespace_labels` (`--metrics-namespace-labels`),
/// `orgaccess_advice_findings{namespace,finding,severity}`, one series per
/// organization. Namespaces name tenants, and the admin port serves anyone
/// who reaches it: so by default the metrics name no namespace. A series
/// exists while its finding does: one whose finding went away, or whose
/// namespace lost its Organization, is removed.
#[derive(Clone, Default)]
pub struct AdviceMetrics {
    namespace_labels: bool,
    findings: Family<AdviceLabels, Gauge>,
    totals: Family<AdviceTotalLabels, Gauge>,
    /// The counts per namespace, to sum them and to remove those that go away.
    present: Arc<Mutex<BTreeMap<String, BTreeMap<AdviceTotalLabels, i64>>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct AdviceLabels {
    pub namespace: String,
    pub finding: &'static str,
    pub severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct AdviceTotalLabels {
    pub finding: &'static str,
    pub severity: &'static str,
}

impl AdviceMetrics {
    /// Series per namespace when `namespace_labels`, summed otherwise.
    pub fn new(namespace_labels: bool) -> AdviceMetrics {
        AdviceMetrics {
            namespace_labels,
            ..AdviceMetrics::default()
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        if self.namespace_labels {
            registry.register(
                "orgaccess_advice_findings",
                "Least-privilege findings (orgaccess advise) by organization namespace, finding id and severity",
                self.findings.clone(),
            );
        } else {
            registry.register(
                "orgaccess_advice_findings",
                "Least-privilege findings (orgaccess advise) of every organization together, by finding id and severity",
                self.totals.clone(),
            );
        }
    }

    /// Sets the namespace's series from its findings, removing the series
    /// of findings it no longer has.
    pub fn set(&self, namespace: &str, findings: &[crate::core::advice::Finding]) {
        let now: BTreeMap<AdviceTotalLabels, i64> = crate::core::advice::by_id(findings)
            .into_iter()
            .map(|((finding, severity), n)| {
                (
                    AdviceTotalLabels {
                        finding,
                        severity: severity.as_str(),
                    },
                    i64::from(n),
                )
            })
            .collect();
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        let before = present.remove(namespace).unwrap_or_default();
        if !now.is_empty() {
            present.insert(namespace.to_string(), now.clone());
        }
        self.update(&present, namespace, &before, &now);
    }

    /// Removes the series of every namespace `live` says no longer holds an
    /// organization.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = present.keys().filter(|ns| !live(ns)).cloned().collect();
        for ns in gone {
            let before = present.remove(&ns).unwrap_or_default();
            self.update(&present, &ns, &before, &BTreeMap::new());
        }
    }

    /// Brings the series of `namespace` (or the sums) from `before` to `now`.
    fn update(
        &self,
        present: &BTreeMap<String, BTreeMap<AdviceTotalLabels, i64>>,
        namespace: &str,
        before: &BTreeMap<AdviceTotalLabels, i64>,
        now: &BTreeMap<AdviceTotalLabels, i64>,
    ) {
        let labelled = |t: &AdviceTotalLabels| AdviceLabels {
            namespace: namespace.to_string(),
            finding: t.finding,
            severity: t.severity,
        };
        for gone in before.keys().filter(|l| !now.contains_key(*l)) {
            self.findings.remove(&labelled(gone));
        }
        for (labels, n) in now {
            self.findings.get_or_create(&labelled(labels)).set(*n);
        }
        for key in before.keys().chain(now.keys()) {
            let total: i64 = present.values().filter_map(|c| c.get(key)).sum();
            if total == 0 {
                self.totals.remove(key);
            } else {
                self.totals.get_or_create(key).set(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn advice_series_follow_the_findings_and_their_namespace() {
        use crate::core::advice::{Finding, Severity};
        let finding = |id: &'static str, severity| Finding {
            id,
            severity,
            objects: vec![],
            message: String::new(),
            practice: "",
            source: "",
            fix: String::new(),
        };
        let m = AdviceMetrics::new(true);
        let mut registry = Registry::default();
        m.register(&mut registry);
        let text = || Format::Classic.encode(&registry).unwrap();
        m.set(
            "acme",
            &[
                finding("group-without-members", Severity::Info),
                finding("group-without-members", Severity::Info),
                finding("groups-edit-holders", Severity::Warning),
            ],
        );
        m.set("other", &[finding("key-near-cap", Severity::Info)]);
        let t = text();
        assert!(
            t.contains(r#"orgaccess_advice_findings{namespace="acme",finding="group-without-members",severity="info"} 2"#),
            "{t}"
        );
        assert!(t.contains(r#"finding="groups-edit-holders",severity="warning"} 1"#));
        m.set("acme", &[finding("group-without-members", Severity::Info)]);
        assert!(
            !text().contains("groups-edit-holders"),
            "a finding gone is no series"
        );
        m.retain(|ns| ns != "other");
        let t = text();
        assert!(!t.contains("key-near-cap") && t.contains("acme"), "{t}");
    }

    /// By default the gauges name no namespace: the findings of every
    /// organization are summed, and a namespace going away takes its share.
    #[test]
    fn advice_series_name_no_namespace_by_default() {
        use crate::core::advice::{Finding, Severity};
        let finding = |id: &'static str, severity| Finding {
            id,
            severity,
            objects: vec![],
            message: String::new(),
            practice: "",
            source: "",
            fix: String::new(),
        };
        let m = AdviceMetrics::new(false);
        let mut registry = Registry::default();
        m.register(&mut registry);
        let text = || Format::Classic.encode(&registry).unwrap();
        let info = || finding("group-without-members", Severity::Info);
        m.set("acme", &[info(), info()]);
        m.set(
            "tenant-b",
            &[info(), finding("key-near-cap", Severity::Info)],
        );
        let t = text();
        assert!(
            t.contains(
                r#"orgaccess_advice_findings{finding="group-without-members",severity="info"} 3"#
            ),
            "{t}"
        );
        assert!(
            !t.contains("acme") && !t.contains("tenant-b") && !t.contains("namespace"),
            "{t}"
        );
        m.retain(|ns| ns != "tenant-b");
        let t = text();
        assert!(
            t.contains(r#"finding="group-without-members",severity="info"} 2"#),
            "{t}"
        );
        assert!(!t.contains("key-near-cap"), "{t}");
        m.set("acme", &[]);
        assert!(!text().contains("group-without-members"));
    }

    #[test]
    fn accept_header_selects_the_format() {
        for (accept, expected) in [
            (None, Format::OpenMetrics),
            (Some("*/*"), Format::OpenMetrics),
            (Some("text/plain"), Format::Classic),
            (Some("text/plain; version=0.0.4"), Format::Classic),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            // What Prometheus sends: OpenMetrics first.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                ),
                Format::OpenMetrics,
            ),
            // A scraper that prefers the classic format.
            (
                Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
                Format::Classic,
            ),
            (Some("text/plain;q=0"), Format::OpenMetrics),
        ] {
            assert_eq!(Format::from_accept(accept), expected, "Accept: {accept:?}");
        }
    }

    #[test]
    fn classic_format_names_counter_samples_and_has_no_eof() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry
            .sub_registry_with_prefix("orgaccess_test")
            .register("things", "Things counted", counter);
        register_process(&mut registry);
        let openmetrics = Format::OpenMetrics.encode(&registry).unwrap();
        assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
        assert!(openmetrics.contains("# TYPE orgaccess_test_things counter\n"));

        let classic = Format::Classic.encode(&registry).unwrap();
        assert!(!classic.contains("# EOF"), "{classic}");
        assert!(classic.contains("# HELP orgaccess_test_things_total Things counted"));
        assert!(classic.contains("# TYPE orgaccess_test_things_total counter\n"));
        assert!(classic.contains("\norgaccess_test_things_total 0\n"));
        assert!(classic.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(classic.contains("orgaccess_build_info{version=\""));
    }

    #[test]
    fn process_metrics_are_read_from_proc() {
        let mut registry = Registry::default();
        register_process(&mut registry);
        let text = Format::OpenMetrics.encode(&registry).unwrap();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
                .parse()
                .unwrap();
            if name != "process_cpu_seconds_total " {
                assert!(value > 0.0, "{name}{value}");
            }
        }
        assert!(text.contains(&format!(
            "orgaccess_build_info{{version=\"{VERSION}\"}} 1\n"
        )));
    }

    #[test]
    fn proc_parsing_counts_fields_after_the_command() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat =
            "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 12345 1000 200 rest";
        let status = "Name:\ta b\nVmRSS:\t   2048 kB\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\n";
        let stats = parse_proc(stat, status, boot, 7).expect("parsed");
        assert_eq!(stats.cpu_seconds, 3.0);
        assert!((stats.start_time_seconds - 1_700_000_123.45).abs() < 1e-3);
        assert_eq!(stats.resident_memory_bytes, 2048 * 1024);
        assert_eq!(stats.open_fds, 7);
    }
}
