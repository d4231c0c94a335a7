//! Operations tools built on the layers below: offline verification of a
//! store directory ([`verify`]). The `keyval` CLI parses arguments and
//! prints what these return; it decodes no format itself.

pub mod verify;
