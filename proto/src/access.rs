//! The access policy of every RPC, read from the `omnipanel.v1.access`
//! method option in the encoded descriptor set. The proto files are the one
//! place that says who may call what; the agent's access layer builds its
//! table from here at start-up instead of keeping a second hand-written list.

use prost_reflect::{DescriptorPool, MessageDescriptor};

use crate::v1::AccessPolicy;

/// Full name of the method option carrying an RPC's [`AccessPolicy`].
pub const ACCESS_OPTION: &str = "omnipanel.v1.access";

/// One RPC and the policy its proto declares.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodPolicy {
    /// The gRPC path, e.g. `/omnipanel.v1.AgentService/GetInfo`.
    pub path: String,
    /// The declared policy; `None` when the RPC lacks the option (a test
    /// forbids that; the access layer then treats it as admin, owner only).
    pub policy: Option<AccessPolicy>,
    /// `Service/Method`, as logs show it.
    pub name: String,
    /// Neither side streams.
    pub unary: bool,
    /// The request message (the activity log reads where its names are;
    /// it holds the whole decoded pool, so keep it only while building).
    pub input: MessageDescriptor,
}

/// Why the descriptor set could not be read.
#[derive(Debug)]
pub struct PolicyError(String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// Every RPC of every service in `descriptor_set` with its declared policy.
/// Decoding the set takes milliseconds: the agent does it once at start
/// and gives the result to every layer that needs it.
pub fn method_policies(descriptor_set: &[u8]) -> Result<Vec<MethodPolicy>, PolicyError> {
    let pool = DescriptorPool::decode(descriptor_set)
        .map_err(|err| PolicyError(format!("the API descriptor set does not decode: {err}")))?;
    let option = pool.get_extension_by_name(ACCESS_OPTION).ok_or_else(|| {
        PolicyError(format!(
            "the API descriptor set does not define the {ACCESS_OPTION} option"
        ))
    })?;
    let mut policies = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            let policy = if options.has_extension(&option) {
                let value = options.get_extension(&option);
                let message = value.as_message().ok_or_else(|| {
                    PolicyError(format!(
                        "{} has an {ACCESS_OPTION} option that is not a message",
                        method.full_name()
                    ))
                })?;
                Some(message.transcode_to::<AccessPolicy>().map_err(|err| {
                    PolicyError(format!(
                        "{}: the {ACCESS_OPTION} option does not decode: {err}",
                        method.full_name()
                    ))
                })?)
            } else {
                None
            };
            policies.push(MethodPolicy {
                path: format!("/{}/{}", service.full_name(), method.name()),
                policy,
                name: format!("{}/{}", service.name(), method.name()),
                unary: !method.is_client_streaming() && !method.is_server_streaming(),
                input: method.input(),
            });
        }
    }
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{COMPACT_DESCRIPTOR_SET, FILE_DESCRIPTOR_SET, v1::Scope};

    /// The set the agent decodes at start-up says what the full one says,
    /// in well under half the bytes.
    #[test]
    fn the_compact_set_declares_the_same_methods() {
        let shape = |set: &[u8]| match method_policies(set) {
            Ok(policies) => policies
                .into_iter()
                .map(|m| {
                    (
                        m.path,
                        m.policy,
                        m.name,
                        m.unary,
                        m.input.full_name().to_owned(),
                    )
                })
                .collect::<Vec<_>>(),
            Err(err) => panic!("{err}"),
        };
        assert_eq!(shape(COMPACT_DESCRIPTOR_SET), shape(FILE_DESCRIPTOR_SET));
        assert!(
            COMPACT_DESCRIPTOR_SET.len() * 2 < FILE_DESCRIPTOR_SET.len(),
            "compact {} bytes, full {}",
            COMPACT_DESCRIPTOR_SET.len(),
            FILE_DESCRIPTOR_SET.len()
        );
    }

    #[test]
    fn every_rpc_declares_an_access_policy() {
        let policies = match method_policies(FILE_DESCRIPTOR_SET) {
            Ok(policies) => policies,
            Err(err) => panic!("{err}"),
        };
        assert!(policies.len() > 70, "only {} RPCs found", policies.len());
        let missing: Vec<_> = policies
            .iter()
            .filter(|method| {
                method
                    .policy
                    .as_ref()
                    .is_none_or(|policy| policy.scope() == Scope::Unspecified)
            })
            .map(|method| method.path.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "give these RPCs an `option (access) = {{scope: ...}}`: {missing:?}"
        );
    }

    #[test]
    fn the_policies_are_the_ones_the_proto_declares() {
        let Ok(policies) = method_policies(FILE_DESCRIPTOR_SET) else {
            panic!("descriptor set does not decode");
        };
        let scope_of = |path: &str| {
            policies
                .iter()
                .find(|method| method.path == path)
                .and_then(|method| method.policy.as_ref())
                .map(AccessPolicy::scope)
        };
        assert_eq!(
            scope_of("/omnipanel.v1.AgentService/GetInfo"),
            Some(Scope::Status)
        );
        assert_eq!(
            scope_of("/omnipanel.v1.ModelService/Generate"),
            Some(Scope::Infer)
        );
        let audit_of = |path: &str| {
            policies
                .iter()
                .find(|method| method.path == path)
                .and_then(|method| method.policy.as_ref())
                .map(AccessPolicy::audit)
        };
        assert_eq!(
            audit_of("/omnipanel.v1.FileService/ReadFile"),
            Some(crate::v1::AuditClass::Contents)
        );
        assert_eq!(
            scope_of("/omnipanel.v1.FileService/WriteFile"),
            Some(Scope::Write)
        );
        assert_eq!(
            scope_of("/omnipanel.v1.AgentService/Shutdown"),
            Some(Scope::Admin)
        );
    }

    #[test]
    fn a_set_without_the_option_is_an_error_not_an_empty_table() {
        let Err(err) = method_policies(&[]) else {
            panic!("an empty set has no access option");
        };
        assert!(err.to_string().contains(ACCESS_OPTION), "{err}");
    }
}
