//! Engine benchmarks: the effective-privilege recompute at organization scale,
//! and single covers/missing checks. Figures are recorded in docs/performance.md.
//!
//! Shape: 10,000 groups of 20 privileges, a tenth of them Custom with
//! 50 resources; 100,000 members in 5 groups each.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use orgaccess::core::builtin::GroupTemplate;
use orgaccess::core::catalog::{CATALOG, Create};
use orgaccess::core::privilege::{
    AccessLevel, PrivilegeSet, PrivilegeSpec, ResourceAccess, ResourceLevel, parse_all, spec,
};

const GROUPS: usize = 10_000;
const MEMBERS: usize = 100_000;
const GROUPS_PER_MEMBER: usize = 5;
const PRIVILEGES_PER_GROUP: usize = 20;
const CUSTOM_RESOURCES: usize = 50;

/// Small deterministic generator, so every run measures the same data.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

fn group_privileges(rng: &mut Lcg, resource_names: &[String]) -> PrivilegeSet {
    let mut domains: Vec<usize> = (0..CATALOG.len()).collect();
    for i in 0..PRIVILEGES_PER_GROUP {
        let j = i + rng.next() % (domains.len() - i);
        domains.swap(i, j);
    }
    let specs: Vec<PrivilegeSpec> = domains[..PRIVILEGES_PER_GROUP]
        .iter()
        .map(|&i| {
            let d = &CATALOG[i];
            let o = d.offers;
            if o.custom.is_some() && rng.next().is_multiple_of(2) {
                let start = rng.next() % resource_names.len();
                // Distinct names: a stride of 7 over 500 names never repeats within 50.
                let resources = (0..CUSTOM_RESOURCES)
                    .map(|k| ResourceAccess {
                        name: resource_names[(start + k * 7) % resource_names.len()].clone(),
                        level: if rng.next().is_multiple_of(3) {
                            ResourceLevel::Edit
                        } else {
                            ResourceLevel::View
                        },
                    })
                    .collect();
                let mut s = spec(d.service, d.name, AccessLevel::Custom);
                s.resources = resources;
                if o.create == Create::Choosable && rng.next().is_multiple_of(2) {
                    s.can_create = Some(true);
                }
                return s;
            }
            let level = if o.allowed {
                AccessLevel::Allowed
            } else if o.push {
                AccessLevel::PushAndView
            } else if o.edit && rng.next().is_multiple_of(2) {
                AccessLevel::Edit
            } else {
                AccessLevel::View
            };
            spec(d.service, d.name, level)
        })
        .collect();
    parse_all(&specs).expect("valid")
}

struct Org {
    groups: Vec<PrivilegeSet>,
    members: Vec<[usize; GROUPS_PER_MEMBER]>,
}

fn org() -> Org {
    let mut rng = Lcg(42);
    let resource_names: Vec<String> = (0..500).map(|i| format!("resource-{i:04}")).collect();
    let groups = (0..GROUPS)
        .map(|_| group_privileges(&mut rng, &resource_names))
        .collect();
    let members = (0..MEMBERS)
        .map(|_| std::array::from_fn(|_| rng.next() % GROUPS))
        .collect();
    Org { groups, members }
}

/// A member's set as `effective::member_effective` builds it: the union of
/// its groups' sets into one accumulator sized for all of them.
fn effective(org: &Org, member: &[usize; GROUPS_PER_MEMBER]) -> PrivilegeSet {
    PrivilegeSet::union(member.iter().map(|&g| &org.groups[g]))
}

fn benches(c: &mut Criterion) {
    let org = org();

    c.bench_function("merge one group into a member's set", |b| {
        let mut i = 0;
        b.iter_batched(
            || {
                i = (i + 1) % MEMBERS;
                let m = org.members[i];
                (org.groups[m[0]].merge(&org.groups[m[1]]), &org.groups[m[2]])
            },
            |(mut acc, g)| {
                acc.merge_in(g);
                acc
            },
            BatchSize::SmallInput,
        )
    });

    // The same merge into an accumulator with room for it, as `union` (the
    // member recompute) merges every group: the merge without the allocator.
    c.bench_function("merge one group into a member's set, room reserved", |b| {
        let mut i = 0;
        b.iter_batched(
            || {
                i = (i + 1) % MEMBERS;
                let m = org.members[i];
                let mut acc = org.groups[m[0]].merge(&org.groups[m[1]]);
                acc.reserve_for(&org.groups[m[2]]);
                (acc, &org.groups[m[2]])
            },
            |(mut acc, g)| {
                acc.merge_in(g);
                acc
            },
            BatchSize::SmallInput,
        )
    });

    let effective_sets: Vec<PrivilegeSet> = org.members[..1000]
        .iter()
        .map(|m| effective(&org, m))
        .collect();
    c.bench_function("covers: member set vs group", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 1000;
            black_box(effective_sets[i].covers(&org.groups[i * 7 % GROUPS]))
        })
    });
    c.bench_function("missing: member set vs group", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 1000;
            black_box(effective_sets[i].missing(&org.groups[i * 7 % GROUPS]))
        })
    });
    let admins = GroupTemplate::Administrators.privileges();
    c.bench_function("covers: Administrators vs member set", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 1000;
            black_box(admins.covers(&effective_sets[i]))
        })
    });

    let mut full = c.benchmark_group("organization");
    full.sample_size(10);
    full.bench_function("recompute 100k members over 10k groups", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for m in &org.members {
                total += effective(&org, m).len();
            }
            black_box(total)
        })
    });
    full.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
