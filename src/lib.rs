//! breakerd: circuit breakers, synthetic checks, Prometheus metrics and alerts for the external
//! providers a business depends on.
//!
//! The [`breaker`] module is the embeddable circuit breaker: it has no configuration-file, HTTP
//! or metrics types in its API, so any Rust service can use it on its own.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod alert;
pub mod api;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod check_threads;
pub mod config;
pub(crate) mod credential;
pub mod daemon;
pub mod demo;
pub(crate) mod duration;
pub mod history;
pub mod logfmt;
pub mod metrics;
pub mod observe;
pub mod outcome;
pub mod probe;
pub mod provider;
pub mod proxy;
pub(crate) mod proxy_threads;
pub(crate) mod pump;
pub(crate) mod redact;
pub mod registry;
pub mod scheduler;
pub mod serve;
pub(crate) mod stable_hash;
pub mod statefs;
pub(crate) mod supervisor;
pub mod tasks;
pub(crate) mod text;
pub mod transport;
pub mod unit;
pub(crate) mod wall;

/// README.md's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
