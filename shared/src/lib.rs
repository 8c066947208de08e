//! Realnet: a configuration-driven backend. This crate holds everything the runners share: the
//! type system ([`types`]), items ([`item`]) and their query language ([`query`]), the stores
//! ([`store`]), the HTTP API ([`api`]), configuration ([`config`]) and the per-process core
//! ([`Realnet`]). The binaries in `functions/` and `cli/` only wire these together.

pub mod access;
pub mod api;
pub mod auth;
pub mod aws;
pub mod blob;
pub mod cache;
pub mod config;
pub mod context;
pub mod error;
pub mod extensions;
pub mod item;
pub mod jobs;
pub mod metrics;
pub mod orgs;
pub mod query;
pub mod queue;
pub mod schedule;
pub mod start;
pub mod store;
pub mod telemetry;
pub mod types;

pub use context::Realnet;
pub use start::StartError;
