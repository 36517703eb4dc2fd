//! Shared parts of the nnc fuzz targets: the seed model and seed files, the edit scripts that
//! mutate a valid file below its CRCs, full decoding into a comparable outcome, the
//! stuttering readers, and the arbitrary models and encoder settings of the round trip.
pub mod arb_model;
pub mod edit;
pub mod outcome;
pub mod readers;
pub mod seed;
