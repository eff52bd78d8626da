//! The status page of the admin listener (docs/operations.md "Status
//! page"): what the tracker says about each hosted group's storages and
//! what this node reaches, as plain data with its problem rules
//! ([`report`]) and as an HTML page ([`page`]). Pure: the admin listener
//! gathers the data and answers.

pub mod page;
pub mod report;

pub use report::{
    EventRow, GroupReport, PeerRow, PortView, Report, StorageRow, SyncDelay, TrackerInfo,
};
