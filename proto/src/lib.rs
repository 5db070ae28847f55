//! Generated types for the OmniPanel API, package `omnipanel.v1`: prost
//! messages, tonic client and server stubs, proto3-JSON serde impls (used by
//! `omnipanel --json`), and the encoded descriptor set that server reflection
//! publishes. Only the agent's `rpc/` layer and clients use this crate.

pub mod access;

/// Version of the wire protocol. Bumped on any incompatible change to
/// `omnipanel.v1`; clients compare it with `GetInfoResponse.protocol_version`.
pub const PROTOCOL_VERSION: u32 = 1;

/// `google.rpc.ErrorInfo.domain` of every error status the agent makes.
/// A status without it comes from the transport, not from the agent.
pub const ERROR_DOMAIN: &str = "omnipanel.v1";

/// Response header carrying the agent's version on every response.
pub const VERSION_HEADER: &str = "omnipanel-version";

/// Request metadata carrying the id of a confirmation the user allowed: a
/// client retries a destructive act with it after CONFIRMATION_REQUIRED.
pub const CONFIRMATION_HEADER: &str = "omnipanel-confirmation";

/// `google.rpc.ErrorInfo` metadata key naming the confirmation a
/// CONFIRMATION_REQUIRED (or CONFIRMATION_PENDING) error waits on.
pub const CONFIRMATION_ID_KEY: &str = "confirmation_id";

/// Every file under `proto/omnipanel/v1/`, encoded as a `FileDescriptorSet`
/// with its comments (what server reflection serves).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/omnipanel_descriptor.bin"));

/// The same set without source info (comments): every service, method,
/// message and option, for what reads the API's shape at start-up (the
/// access and audit tables, [`access::method_policies`]) and keeps it.
pub const COMPACT_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/omnipanel_descriptor_compact.bin"
));

/// The `omnipanel.v1` package.
pub mod v1 {
    // Generated code: its shape is prost's and pbjson's, not ours to lint.
    #![allow(clippy::all, clippy::pedantic, unused_qualifications, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/omnipanel.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/omnipanel.v1.serde.rs"));
}
