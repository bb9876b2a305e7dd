//! FHIR R4: the REST client ([`client`]) and the resources the bridge reads and writes
//! ([`resources`]).

pub mod client;
pub mod resources;

pub use client::{FhirClient, FhirError};
