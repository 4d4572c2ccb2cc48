//! The pure core: privilege catalog, privilege algebra, built-in groups and
//! templates, effective privileges and the admission rules. No kube types here.
#![forbid(unsafe_code)]

pub mod advice;
pub mod apikey;
pub mod bindings;
pub mod bounds;
pub mod builtin;
pub mod catalog;
pub mod change;
pub mod decision;
pub mod diff;
pub mod effective;
pub mod model;
pub mod platform;
pub mod privilege;
pub mod references;
pub mod review;
pub mod rules;
pub mod warnings;
