//! The two conversion traits every `rpc/<service>/convert.rs` implements.
//! Proto types live in `omnipanel-proto` and domain types in
//! `omnipanel-core`, so the orphan rule forbids `From` between them here;
//! these local traits play that part, one impl per pair, each unit-tested
//! next to it.

use omnipanel_core::error::Error;

/// A domain value as the proto message the API sends.
pub trait IntoProto<P> {
    /// The value in its wire form.
    fn into_proto(self) -> P;
}

/// A domain value parsed from a proto message a client sent. Fails with an
/// `InvalidArgument` error that names the offending field.
pub trait TryFromProto<P>: Sized {
    /// The value, or why the message is not acceptable.
    fn try_from_proto(proto: P) -> Result<Self, Error>;
}

/// Infallible parsing, for messages with nothing to validate.
pub trait FromProto<P>: Sized {
    /// The value from its wire form.
    fn from_proto(proto: P) -> Self;
}

impl<P, T: IntoProto<P>> IntoProto<Vec<P>> for Vec<T> {
    fn into_proto(self) -> Vec<P> {
        self.into_iter().map(IntoProto::into_proto).collect()
    }
}

impl<P, T: IntoProto<P>> IntoProto<Option<P>> for Option<T> {
    fn into_proto(self) -> Option<P> {
        self.map(IntoProto::into_proto)
    }
}
