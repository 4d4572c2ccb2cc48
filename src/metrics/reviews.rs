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
    /// The standing of each (namespace, group) counted.
    present: Arc<Mutex<BTreeMap<(String, String), &'static str>>>,
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
    /// gone).
    pub fn set(&self, namespace: &str, group: &str, standing: Option<Standing>) {
        let now = standing.and_then(label);
        let key = (namespace.to_string(), group.to_string());
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        let before = match now {
            Some(s) => present.insert(key, s),
            None => present.remove(&key),
        };
        if before == now {
            return;
        }
        for standing in [before, now].into_iter().flatten() {
            let total = present.values().filter(|s| **s == standing).count();
            let here = present
                .iter()
                .filter(|((ns, _), s)| ns == namespace && **s == standing)
                .count();
            self.totals
                .get_or_create(&TotalLabels { standing })
                .set(total as i64);
            let labels = Labels {
                namespace: namespace.to_string(),
                standing,
            };
            if here == 0 {
                self.by_namespace.remove(&labels);
            } else {
                self.by_namespace.get_or_create(&labels).set(here as i64);
            }
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
        assert!(
            t.contains("orgaccess_access_reviews{namespace=\"a\",standing=\"due\"} 1"),
            "{t}"
        );
    }
}
