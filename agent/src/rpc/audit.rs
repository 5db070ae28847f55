//! The activity log's tower layer, outside the access layer on both
//! listeners so that refused calls are recorded too. What a method's calls
//! leave in the log comes from the `audit` class its proto declares
//! ([`AuditTable`]): unspecified means "recorded when the method needs
//! write or admin", contents means "recorded, aggregated per minute, for
//! callers other than the owner", none and always say what they mean. The
//! caller is what the access layer identified (`access::Identified` on the
//! response), the process is the socket peer's pid. The target is read
//! from the first request message as it passes ([`TapBody`]: its first
//! bytes are copied, nothing is delayed or buffered whole) by picking
//! whitelisted name fields ([`TARGET_FIELDS`]); contents and prompts are
//! never among them. The outcome is "ok" or the error's reason, from the
//! headers of a trailers-only answer or from the trailers at the end of
//! the body; a stream is recorded when it ends or is dropped. Recording
//! only queues a row for the domain's writer (`omnipanel_core::audit`).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use omnipanel_proto::{
    access::MethodPolicy,
    v1::{AuditClass, Scope as ProtoScope},
};
use prost::encoding::{WireType, decode_key, decode_varint};
use prost_reflect::{Kind, MessageDescriptor};
use tonic::{
    Status,
    body::Body,
    transport::server::{TcpConnectInfo, UdsConnectInfo},
};
use tonic_types::StatusExt;
use tower::{Layer, Service};

use crate::rpc::BoxFuture;

use crate::rpc::access::Identified;
use omnipanel_core::{
    audit::{Audit, Record},
    store::now_ms,
    sync,
};

/// Request fields copied into an entry's target: names of things, never
/// contents (`content`, `prompt`, `messages`, `system` are not here).
pub const TARGET_FIELDS: &[&str] = &[
    "project",
    "path",
    "from",
    "to",
    "model",
    "name",
    "branch",
    "remote",
    "provider",
    "id",
    "conversation_id",
    "client_name",
];

/// How much of the first request message is read for its target. Names
/// come first in every request (lower field numbers than contents), so a
/// WriteFile's path is read without copying its megabytes.
const TAP_BYTES: usize = 64 * 1024;
/// Most `field=value` pairs in one target, and longest value kept.
const MAX_PAIRS: usize = 16;
const MAX_VALUE_CHARS: usize = 256;

/// When a method's calls are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Never.
    Never,
    /// Every call.
    Always,
    /// Calls of callers other than the owner, aggregated per minute.
    ContentsOfOthers,
}

#[derive(Debug, Clone)]
struct Method {
    rule: Rule,
    /// `Service/Method`, as the log shows it.
    name: String,
    /// Where its request names its target.
    target: Arc<TargetFields>,
}

/// Where a request message names what it acts on, by field number: the
/// strings of [`TARGET_FIELDS`], and the messages read inside batch steps
/// (`operations`, three levels at most). Read from the message's
/// descriptor once at start, so that the decoded descriptor pool (about
/// 0.8 MB of small allocations) is not kept for the agent's lifetime.
#[derive(Debug, Default, PartialEq)]
struct TargetFields {
    strings: Vec<(u32, &'static str)>,
    messages: Vec<(u32, Arc<TargetFields>)>,
}

impl TargetFields {
    fn of(message: &MessageDescriptor) -> Self {
        Self::within(message, false, 0)
    }

    fn within(message: &MessageDescriptor, in_batch: bool, depth: usize) -> Self {
        let mut fields = Self::default();
        for field in message.fields() {
            match field.kind() {
                Kind::String => {
                    if let Some(name) = TARGET_FIELDS.iter().find(|name| **name == field.name()) {
                        fields.strings.push((field.number(), name));
                    }
                }
                Kind::Message(inner) if depth < 3 && (in_batch || field.name() == "operations") => {
                    fields.messages.push((
                        field.number(),
                        Arc::new(Self::within(&inner, true, depth + 1)),
                    ));
                }
                _ => {}
            }
        }
        fields
    }
}

/// How each method is recorded, read from the proto's `audit` classes.
#[derive(Debug)]
pub struct AuditTable {
    by_path: HashMap<String, Method>,
}

impl AuditTable {
    /// The classes the proto files declare, from the methods read once at
    /// start (`omnipanel_proto::access::method_policies`).
    pub fn from_methods(methods: &[MethodPolicy]) -> Self {
        let mut by_path = HashMap::new();
        for method in methods {
            let rule = match &method.policy {
                None => Rule::Always,
                Some(policy) => match policy.audit() {
                    AuditClass::None => Rule::Never,
                    AuditClass::Always => Rule::Always,
                    AuditClass::Contents => Rule::ContentsOfOthers,
                    AuditClass::Unspecified => match policy.scope() {
                        ProtoScope::Write | ProtoScope::Admin => Rule::Always,
                        _ => Rule::Never,
                    },
                },
            };
            by_path.insert(
                method.path.clone(),
                Method {
                    rule,
                    name: method.name.clone(),
                    target: Arc::new(TargetFields::of(&method.input)),
                },
            );
        }
        Self { by_path }
    }

    fn method(&self, path: &str) -> Option<&Method> {
        self.by_path
            .get(path)
            .filter(|method| method.rule != Rule::Never)
    }
}

/// The layer; one for both listeners.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    audit: Arc<Audit>,
    table: Arc<AuditTable>,
}

impl AuditLayer {
    /// Record calls into `audit` as `table` says.
    pub fn new(audit: Arc<Audit>, table: Arc<AuditTable>) -> Self {
        Self { audit, table }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`AuditLayer`].
#[derive(Debug, Clone)]
pub struct AuditService<S> {
    inner: S,
    layer: AuditLayer,
}

impl<S> Service<Request<Body>> for AuditService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was polled ready must serve this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(method) = self.layer.table.method(req.uri().path()).cloned() else {
            return Box::pin(inner.call(req));
        };
        let peer_pid = req
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .and_then(|cred| cred.pid())
            .and_then(|pid| u32::try_from(pid).ok());
        let peer_address = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|address| address.to_string())
            .unwrap_or_default();
        let tapped = Arc::new(Mutex::new(Vec::new()));
        let req = req.map(|body| {
            Body::new(TapBody {
                inner: body,
                tapped: tapped.clone(),
                done: false,
            })
        });
        let time_ms = now_ms();
        let audit = self.layer.audit.clone();
        Box::pin(async move {
            let response = inner.call(req).await?;
            let caller = response
                .extensions()
                .get::<Identified>()
                .and_then(|identified| identified.0.clone());
            let is_owner = caller.as_ref().is_some_and(|caller| caller.is_owner());
            if method.rule == Rule::ContentsOfOthers && is_owner {
                return Ok(response);
            }
            let (client_id, client_name) = caller.as_ref().map_or_else(
                || ("unidentified".to_owned(), "unidentified".to_owned()),
                |caller| {
                    (
                        caller.client_id().to_owned(),
                        caller.client_name().to_owned(),
                    )
                },
            );
            let pending = Pending {
                audit,
                tapped,
                target: method.target,
                record: Record {
                    time_ms,
                    client_id,
                    client_name,
                    peer_pid,
                    peer_address,
                    method: method.name,
                    aggregate: method.rule == Rule::ContentsOfOthers,
                    ..Record::default()
                },
            };
            if let Some(outcome) = outcome_of(response.headers()) {
                // Trailers-only: the call was answered at once (refused,
                // or failed before any message).
                pending.finish(outcome);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(RecordingBody {
                    inner: body,
                    pending: Some(pending),
                })
            }))
        })
    }
}

/// A call waiting for its outcome.
#[derive(Debug)]
struct Pending {
    audit: Arc<Audit>,
    tapped: Arc<Mutex<Vec<u8>>>,
    target: Arc<TargetFields>,
    record: Record,
}

impl Pending {
    fn finish(mut self, outcome: String) {
        let prefix = std::mem::take(&mut *sync::lock(&self.tapped));
        self.record.target = target_of(&self.target, &prefix);
        self.record.project = self
            .record
            .target
            .iter()
            .find(|(field, _)| field == "project")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        self.record.outcome = outcome;
        self.audit.record(self.record);
    }
}

/// The whitelisted fields of the first message of a request body whose
/// first bytes are `prefix` (gRPC framing included). A compressed or cut
/// message yields what could be read.
fn target_of(fields: &TargetFields, prefix: &[u8]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let Some((&flag, rest)) = prefix.split_first() else {
        return pairs;
    };
    if flag != 0 || rest.len() < 4 {
        return pairs;
    }
    let (length, payload) = rest.split_at(4);
    let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
    let payload = &payload[..payload.len().min(length)];
    pick(fields, payload, &mut pairs);
    pairs
}

/// Walk the wire format of one message, copying whitelisted string fields
/// and descending into batch steps (`operations`). Contents are skipped by their
/// length, never copied.
fn pick(fields: &TargetFields, mut bytes: &[u8], pairs: &mut Vec<(String, String)>) {
    while !bytes.is_empty() && pairs.len() < MAX_PAIRS {
        let Ok((number, wire_type)) = decode_key(&mut bytes) else {
            return;
        };
        match wire_type {
            WireType::LengthDelimited => {
                let Ok(length) = decode_varint(&mut bytes) else {
                    return;
                };
                let Ok(length) = usize::try_from(length) else {
                    return;
                };
                if length > bytes.len() {
                    // Cut off at the tap's limit.
                    return;
                }
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                if let Some((_, name)) = fields.strings.iter().find(|(n, _)| *n == number) {
                    let text: String = String::from_utf8_lossy(value)
                        .chars()
                        .take(MAX_VALUE_CHARS)
                        .collect();
                    pairs.push(((*name).to_owned(), text));
                } else if let Some((_, inner)) = fields.messages.iter().find(|(n, _)| *n == number)
                {
                    pick(inner, value, pairs);
                }
            }
            WireType::Varint => {
                if decode_varint(&mut bytes).is_err() {
                    return;
                }
            }
            WireType::SixtyFourBit => bytes = bytes.get(8..).unwrap_or_default(),
            WireType::ThirtyTwoBit => bytes = bytes.get(4..).unwrap_or_default(),
            WireType::StartGroup | WireType::EndGroup => return,
        }
    }
}

/// "ok", or the error's reason (its gRPC code when it has none), from
/// headers or trailers carrying `grpc-status`; `None` without one.
fn outcome_of(headers: &HeaderMap) -> Option<String> {
    let status = Status::from_header_map(headers)?;
    Some(outcome_of_status(&status))
}

fn outcome_of_status(status: &Status) -> String {
    if status.code() == tonic::Code::Ok {
        return "ok".to_owned();
    }
    if let Some(info) = status.get_details_error_info() {
        return info.reason;
    }
    code_name(status.code())
}

/// `PERMISSION_DENIED` for `Code::PermissionDenied`.
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (index, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A request body that copies the first bytes of the first message as
/// they pass.
struct TapBody {
    inner: Body,
    tapped: Arc<Mutex<Vec<u8>>>,
    done: bool,
}

impl http_body::Body for TapBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if !self.done
            && let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let mut tapped = sync::lock(&self.tapped);
            let want = first_message_end(&tapped, data).min(5 + TAP_BYTES);
            let take = want.saturating_sub(tapped.len()).min(data.len());
            tapped.extend_from_slice(&data[..take]);
            let full = tapped.len() >= want;
            drop(tapped);
            self.done = full;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where the first message ends in the body, given the bytes kept so far
/// and the next chunk: the 5-byte frame header plus its length, once the
/// header is known.
fn first_message_end(kept: &[u8], next: &[u8]) -> usize {
    let header: Vec<u8> = kept.iter().chain(next).take(5).copied().collect();
    match header.as_slice() {
        [_, a, b, c, d] => 5 + u32::from_be_bytes([*a, *b, *c, *d]) as usize,
        _ => 5 + TAP_BYTES,
    }
}

/// A response body that records the call when it ends (trailers, an
/// error) or is dropped (the client went away).
struct RecordingBody {
    inner: Body,
    pending: Option<Pending>,
}

impl RecordingBody {
    fn finish(&mut self, outcome: String) {
        if let Some(pending) = self.pending.take() {
            pending.finish(outcome);
        }
    }
}

impl http_body::Body for RecordingBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let outcome = outcome_of(trailers).unwrap_or_else(|| "ok".to_owned());
                    self.finish(outcome);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let outcome = outcome_of_status(status);
                self.finish(outcome);
            }
            Poll::Ready(None) => self.finish("ok".to_owned()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RecordingBody {
    fn drop(&mut self) {
        self.finish("CANCELLED".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use omnipanel_proto::v1 as pb;
    use prost::Message;

    use super::*;

    fn table() -> AuditTable {
        AuditTable::from_methods(
            &omnipanel_proto::access::method_policies(omnipanel_proto::COMPACT_DESCRIPTOR_SET)
                .expect("the API's descriptors"),
        )
    }

    fn framed(message: &impl Message) -> Vec<u8> {
        let payload = message.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
        framed.extend_from_slice(&payload);
        framed
    }

    fn input(path: &str) -> Arc<TargetFields> {
        table()
            .by_path
            .get(path)
            .map(|method| method.target.clone())
            .expect("input")
    }

    #[test]
    fn the_rules_follow_the_declared_classes_and_scopes() {
        let table = table();
        let rule = |path: &str| table.by_path.get(path).map(|method| method.rule);
        assert_eq!(
            rule("/omnipanel.v1.FileService/WriteFile"),
            Some(Rule::Always),
            "write scope"
        );
        assert_eq!(
            rule("/omnipanel.v1.FileService/ReadFile"),
            Some(Rule::ContentsOfOthers)
        );
        assert_eq!(
            rule("/omnipanel.v1.AgentService/GetInfo"),
            Some(Rule::Never)
        );
        assert_eq!(
            rule("/omnipanel.v1.AgentService/ListAudit"),
            Some(Rule::Never)
        );
        assert_eq!(
            rule("/omnipanel.v1.AgentService/ApproveAccess"),
            Some(Rule::Always)
        );
        assert!(table.method("/omnipanel.v1.ModelService/Chat").is_none());
        assert!(table.method("/grpc.health.v1.Health/Check").is_none());
        assert_eq!(
            table
                .method("/omnipanel.v1.FileService/Delete")
                .map(|m| m.name.as_str()),
            Some("FileService/Delete")
        );
    }

    #[test]
    fn the_target_names_things_and_never_contents() {
        let request = pb::WriteFileRequest {
            project: "/home/me/app".into(),
            path: "src/main.rs".into(),
            content: b"secret text".to_vec(),
            ..Default::default()
        };
        let pairs = target_of(
            &input("/omnipanel.v1.FileService/WriteFile"),
            &framed(&request),
        );
        assert_eq!(
            pairs,
            [
                ("project".to_owned(), "/home/me/app".to_owned()),
                ("path".to_owned(), "src/main.rs".to_owned())
            ]
        );
        let prompt = pb::GenerateRequest {
            model: "llama3".into(),
            prompt: "my secret prompt".into(),
            ..Default::default()
        };
        let pairs = target_of(
            &input("/omnipanel.v1.ModelService/Generate"),
            &framed(&prompt),
        );
        assert_eq!(pairs, [("model".to_owned(), "llama3".to_owned())]);
    }

    #[test]
    fn batch_steps_give_their_paths_and_a_cut_message_what_was_read() {
        let op = |path: &str| pb::BatchOperation {
            operation: Some(pb::batch_operation::Operation::Delete(pb::BatchDelete {
                path: path.into(),
                permanent: false,
            })),
        };
        let request = pb::ApplyBatchRequest {
            project: "p1".into(),
            operations: vec![op("a.txt"), op("b.txt")],
        };
        let framed = framed(&request);
        let method = input("/omnipanel.v1.FileService/ApplyBatch");
        let pairs = target_of(&method, &framed);
        let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(fields, ["project=p1", "path=a.txt", "path=b.txt"]);
        let cut = target_of(&method, &framed[..framed.len() - 3]);
        assert_eq!(cut.len(), 2, "{cut:?}");
        assert!(
            target_of(&method, &[1, 0, 0, 0, 1, 0]).is_empty(),
            "compressed"
        );
        assert!(target_of(&method, &[]).is_empty());
    }

    #[test]
    fn outcomes_are_reasons_or_codes() {
        assert_eq!(outcome_of_status(&Status::ok("")), "ok");
        assert_eq!(
            outcome_of_status(&Status::permission_denied("no")),
            "PERMISSION_DENIED"
        );
        let with_reason = crate::rpc::status::to_status(
            omnipanel_core::error::Error::permission_denied("no")
                .with_reason(omnipanel_core::reason::Reason::NotAdmitted),
        );
        assert_eq!(outcome_of_status(&with_reason), "NOT_ADMITTED");
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
    }

    #[test]
    fn the_first_message_end_is_read_from_its_frame_header() {
        assert_eq!(first_message_end(&[0, 0], &[0, 0, 9, 1]), 5 + 9);
        assert_eq!(first_message_end(&[], &[0]), 5 + TAP_BYTES);
    }
}
