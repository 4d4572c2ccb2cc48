//! `orgaccess_access_reviews{standing}`: how many groups' access reviews are
//! due or overdue (core `review::review_state`, the Group's
//! `AccessReviewed` condition), as the controller last reconciled each
//! group; with `namespace_labels`, `{namespace,standing}`. The two totals
//! exist from the start at zero, so an alert on `> 0` has data; per
//! namespace, a series exists while its count is not zero.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::core::review::Standing;

/// The standings counted: a current review is not.
const COUNTED: [&str; 2] = ["due", "overdue"];

fn label(s: Standing) -> Option<&'static str> {
    match s {
        Standing::Current => None,
        Standing::Due => Some("due"),
        Standing::Overdue => Some("overdue"),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct Labels {
    namespace: String,
    standing: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TotalLabels {
    standing: &'static str,
}

#[derive(Clone, Default)]
pub struct ReviewMetrics {
    namespace_labels: bool,
    by_namespace: Family<Labels, Gauge>,
    totals: Family<TotalLabels, Gauge>,
    counts: Arc<Mutex<Counts>>,
}

/// The standing of each (namespace, group) counted, and the counts, kept
/// together so that a change costs a few map operations, not a pass.
#[derive(Default)]
struct Counts {
    groups: BTreeMap<(String, String), &'static str>,
    per_namespace: BTreeMap<(String, &'static str), i64>,
    totals: BTreeMap<&'static str, i64>,
}

impl ReviewMetrics {
    pub fn new(namespace_labels: bool) -> ReviewMetrics {
        let m = ReviewMetrics {
            namespace_labels,
            ..ReviewMetrics::default()
        };
        for standing in COUNTED {
            m.totals.get_or_create(&TotalLabels { standing }).set(0);
        }
        m
    }

    pub fn register(&self, registry: &mut Registry) {
        let help =
            "Groups whose access review is due or overdue (the Group's AccessReviewed condition)";
        if self.namespace_labels {
            registry.register(
                "orgaccess_access_reviews",
                format!("{help}, by organization namespace and standing"),
                self.by_namespace.clone(),
            );
        } else {
            registry.register(
                "orgaccess_access_reviews",
                format!("{help}, by standing"),
                self.totals.clone(),
            );
        }
    }

    /// Records the group's standing (`None`: no cadence, or the group is
    /// gone). Called by the Group reconcile.
    pub fn set(&self, namespace: &str, group: &str, standing: Option<Standing>) {
        let now = standing.and_then(label);
        let key = (namespace.to_string(), group.to_string());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let before = match now {
            Some(s) => counts.groups.insert(key, s),
            None => counts.groups.remove(&key),
        };
        if before != now {
            self.add(&mut counts, namespace, before, -1);
            self.add(&mut counts, namespace, now, 1);
        }
    }

    /// Forgets the groups of `namespace` that `live` says are gone (a
    /// deleted Group is not reconciled): called by the Organization
    /// reconcile, which every Group change reaches.
    pub fn retain(&self, namespace: &str, live: impl Fn(&str) -> bool) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let from = (namespace.to_string(), String::new());
        let gone: Vec<((String, String), &'static str)> = counts
            .groups
            .range(from..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|((_, g), _)| !live(g))
            .map(|(k, s)| (k.clone(), *s))
            .collect();
        for (key, standing) in gone {
            counts.groups.remove(&key);
            self.add(&mut counts, namespace, Some(standing), -1);
        }
    }

    /// Adds `delta` to the count of `standing` in `namespace` and in total,
    /// and sets their series.
    fn add(
        &self,
        counts: &mut Counts,
        namespace: &str,
        standing: Option<&'static str>,
        delta: i64,
    ) {
        let Some(standing) = standing else {
            return;
        };
        let total = counts.totals.entry(standing).or_default();
        *total += delta;
        self.totals
            .get_or_create(&TotalLabels { standing })
            .set(*total);
        let key = (namespace.to_string(), standing);
        let here = counts.per_namespace.entry(key.clone()).or_default();
        *here += delta;
        let labels = Labels {
            namespace: namespace.to_string(),
            standing,
        };
        if *here == 0 {
            counts.per_namespace.remove(&key);
            self.by_namespace.remove(&labels);
        } else {
            self.by_namespace.get_or_create(&labels).set(*here);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &ReviewMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn counts_follow_each_groups_standing() {
        let m = ReviewMetrics::new(false);
        let t = text(&m);
        assert!(
            t.contains("orgaccess_access_reviews{standing=\"due\"} 0"),
            "{t}"
        );
        assert!(
            t.contains("orgaccess_access_reviews{standing=\"overdue\"} 0"),
            "{t}"
        );
        m.set("a", "g1", Some(Standing::Due));
        m.set("b", "g1", Some(Standing::Due));
        m.set("a", "g2", Some(Standing::Overdue));
        let t = text(&m);
        assert!(
            t.contains("orgaccess_access_reviews{standing=\"due\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("orgaccess_access_reviews{standing=\"overdue\"} 1"),
            "{t}"
        );
        // Reviewed: current; deleted: gone.
        m.set("a", "g1", Some(Standing::Current));
        m.set("a", "g2", None);
        let t = text(&m);
        assert!(
            t.contains("orgaccess_access_reviews{standing=\"due\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("orgaccess_access_reviews{standing=\"overdue\"} 0"),
            "{t}"
        );
    }

    #[test]
    fn namespace_series_exist_while_not_zero() {
        let m = ReviewMetrics::new(true);
        m.set("a", "g1", Some(Standing::Overdue));
        m.set("b", "g1", Some(Standing::Due));
        let t = text(&m);
        assert!(
            t.contains("orgaccess_access_reviews{namespace=\"a\",standing=\"overdue\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("orgaccess_access_reviews{namespace=\"b\",standing=\"due\"} 1"),
            "{t}"
        );
        m.set("a", "g1", Some(Standing::Due));
        let t = text(&m);
        assert!(!t.contains("namespace=\"a\",standing=\"overdue\""), "{t}");
        // A group gone is forgotten.
        m.retain("b", |_| false);
        m.retain("a", |g| g == "g1");
        let t = text(&m);
        assert!(!t.contains("namespace=\"b\""), "{t}");
        assert!(
            t.contains("orgaccess_access_reviews{namespace=\"a\",standing=\"due\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("orgaccess_access_reviews{namespace=\"a\",standing=\"due\"} 1"),
            "{t}"
        );
    }
}
