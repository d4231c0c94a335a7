//! Operations tools built on the layers below: offline verification of a
//! store directory ([`verify`]) and a readable dump of its log ([`dump`]). The `keyval` CLI parses arguments and
//! prints what these return; it decodes no format itself.

pub mod dump;
pub mod verify;
