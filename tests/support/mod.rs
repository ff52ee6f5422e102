//! Support library of the end-to-end tests (crate gatehouse-e2e).

pub mod dynamodb_local;
pub mod fuzz_harness;

pub use dynamodb_local::{DynamoLocal, LocalTable, TableDefinition, dynamodb_local};
