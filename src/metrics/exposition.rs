//! Writes the per-service families in the Prometheus text format or in OpenMetrics. Every
//! sample line is a pre-built head (`name{service="`), the service's escaped name, a pre-built
//! tail (`",le="0.5"} `) and one number, each copied in whole chunks. Services go in blocks
//! of 128 (see [`read`]): a block's series are read into the cache at once, then each
//! family's lines of the block are written as one run into that family's own buffer, so no
//! buffer grows to the size of the whole answer (for 10,000 services that is tens of
//! megabytes).
//!
//! The layers, each using only those before it: [`family`] (names, types, help, headers),
//! [`sample`] (the lines' fixed parts), [`gathered`] (what a run's lines are written from),
//! [`read`] (series into gatherings) and [`write`](mod@write) (gatherings into text).

mod family;
mod gathered;
mod read;
mod sample;
mod write;

pub(crate) use family::FAMILIES;
pub use family::Format;
pub(crate) use gathered::Gathered;
pub(crate) use read::gather_run;
pub(crate) use sample::room_for;
pub(crate) use write::write_gathered;
