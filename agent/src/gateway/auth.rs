//! Who may use the gateway: every request presents `Authorization: Bearer
//! TOKEN`, one of the agent's own tokens (`omnipanel token create`), with
//! the scope the endpoint needs (`infer` for inference and listings,
//! `write` for pulls and deletes, any token for `/metrics`). A missing or
//! unknown token is 401 with `WWW-Authenticate: Bearer`; too low a scope is
//! 403. With `gateway.loopback_without_token`, a caller on this machine
//! that presents no valid token is let in as an `infer`-only client (tools
//! that cannot send a header; some insist on sending a dummy key, which
//! grants nothing more than none). Each token's `requests_per_minute` is
//! enforced here by a token bucket per token, in memory: a bucket holds a
//! minute's requests and refills continuously, so a client is never told
//! to wait longer than one request's share of the minute.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, StatusCode, header};
use omnipanel_core::{
    reason::Reason,
    tokens::{Scope, TokenGrant, Tokens},
};

use super::reply::Failure;

/// The caller of one gateway request.
#[derive(Debug, Clone)]
pub struct Client {
    /// The token's grant; `None` for a loopback caller let in without one.
    pub grant: Option<TokenGrant>,
}

impl Client {
    /// The id the activity log knows the caller by.
    pub fn id(&self) -> &str {
        self.grant.as_ref().map_or("loopback", |g| g.id.as_str())
    }

    /// The caller's name for people.
    pub fn name(&self) -> &str {
        self.grant
            .as_ref()
            .map_or("loopback without token", |g| g.name.as_str())
    }

    /// Whether the caller may use `model` on `provider` (as the domain
    /// resolved the request); 403 MODEL_NOT_ALLOWED otherwise.
    pub fn check_model(&self, provider: &str, model: &str) -> Result<(), Failure> {
        match &self.grant {
            Some(grant) if !grant.allows_model(provider, model) => Err(Failure::new(
                StatusCode::FORBIDDEN,
                Reason::ModelNotAllowed.as_str(),
                format!(
                    "this token may not use {provider}/{model}; it may use: {}",
                    grant.allowed_models.join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The models the caller may see in listings: all, or those its token
    /// allows.
    pub fn sees_model(&self, provider: &str, model: &str) -> bool {
        self.grant
            .as_ref()
            .is_none_or(|grant| grant.allows_model(provider, model))
    }
}

/// The gateway's door: tokens, the loopback rule and the rate limits.
#[derive(Debug)]
pub struct Door {
    tokens: Tokens,
    loopback_without_token: bool,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Door {
    /// A door over the agent's tokens.
    pub fn new(tokens: Tokens, loopback_without_token: bool) -> Self {
        Self {
            tokens,
            loopback_without_token,
            buckets: Mutex::default(),
        }
    }

    /// Admit a request that needs `scope`, or say why not.
    pub fn admit(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        scope: Scope,
    ) -> Result<Client, Failure> {
        let presented = bearer(headers);
        let grant = presented.and_then(|secret| self.tokens.verify(secret));
        let loopback_guest = self.loopback_without_token && peer.ip().is_loopback();
        let Some(grant) = grant else {
            if loopback_guest && matches!(scope, Scope::Infer | Scope::Status) {
                return Ok(Client { grant: None });
            }
            let (reason, message) = if presented.is_some() {
                (
                    Reason::TokenInvalid,
                    "the token is not valid (revoked, expired or mistyped); create one with `omnipanel token create NAME --scope infer`",
                )
            } else {
                (
                    Reason::TokenMissing,
                    "this gateway needs a token: send `Authorization: Bearer TOKEN` (create one with `omnipanel token create NAME --scope infer`)",
                )
            };
            return Err(Failure::new(
                StatusCode::UNAUTHORIZED,
                reason.as_str(),
                message,
            ));
        };
        if !grant.scopes.contains(scope) {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                Reason::ScopeTooLow.as_str(),
                format!(
                    "this token has the scopes {}; this needs {}",
                    grant.scopes.names(),
                    scope.name()
                ),
            ));
        }
        if grant.requests_per_minute > 0
            && let Err(wait) = self.take(&grant.id, grant.requests_per_minute, Instant::now())
        {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                Reason::TooManyRequests.as_str(),
                format!(
                    "this token may make {} requests a minute; try again in {seconds} s",
                    grant.requests_per_minute
                ),
            )
            .retry_after(seconds.max(1)));
        }
        Ok(Client { grant: Some(grant) })
    }

    /// Take one request from the token's bucket, or say how long until
    /// one is there.
    fn take(&self, id: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let mut buckets = omnipanel_core::sync::lock(&self.buckets);
        // Buckets that refilled completely hold nothing worth keeping: the
        // map holds only tokens used within the last minute.
        if buckets.len() > 64 {
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < Duration::from_secs(60));
        }
        let bucket = buckets.entry(id.to_owned()).or_insert(Bucket {
            level: f64::from(per_minute),
            at: now,
        });
        bucket.take(f64::from(per_minute), now)
    }
}

/// Requests a token may still make: refills at `per_minute / 60` a
/// second up to `per_minute`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, capacity: f64, now: Instant) -> Result<(), Duration> {
        let rate = capacity / 60.0;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * rate).min(capacity);
        self.at = now;
        if self.level >= 1.0 {
            self.level -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.level) / rate))
        }
    }
}

/// The bearer token of a request, if it sends one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use omnipanel_core::{
        store::Store,
        tokens::{GrantTerms, Scopes},
    };

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    fn remote() -> SocketAddr {
        "192.0.2.1:5000".parse().unwrap()
    }

    fn local() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn a_bucket_holds_a_minute_and_says_when_the_next_request_fits() {
        let start = Instant::now();
        let mut bucket = Bucket {
            level: 2.0,
            at: start,
        };
        assert!(bucket.take(2.0, start).is_ok());
        assert!(bucket.take(2.0, start).is_ok());
        let wait = bucket.take(2.0, start).unwrap_err();
        assert_eq!(wait.as_secs(), 30, "two a minute: one every 30 s");
        assert!(bucket.take(2.0, start + Duration::from_secs(31)).is_ok());
    }

    #[tokio::test]
    async fn tokens_scopes_loopback_and_limits_decide_admission()
    -> omnipanel_core::error::Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        let (infer, _) = tokens
            .create_grant(
                "infer",
                GrantTerms {
                    scopes: Scopes::of([Scope::Infer]),
                    requests_per_minute: 1,
                    ..GrantTerms::default()
                },
            )
            .await?;
        let door = Door::new(tokens.clone(), false);
        let none = door
            .admit(&HeaderMap::new(), remote(), Scope::Infer)
            .unwrap_err();
        assert_eq!(
            (none.status, none.outcome.as_str()),
            (StatusCode::UNAUTHORIZED, "TOKEN_MISSING")
        );
        let wrong = door
            .admit(&headers("Bearer omp_nope"), local(), Scope::Infer)
            .unwrap_err();
        assert_eq!(wrong.outcome, "TOKEN_INVALID");
        let low = door
            .admit(&headers(&format!("Bearer {infer}")), remote(), Scope::Write)
            .unwrap_err();
        assert_eq!(low.status, StatusCode::FORBIDDEN);
        // The refused write took nothing from the bucket.
        let client = door
            .admit(&headers(&format!("Bearer {infer}")), remote(), Scope::Infer)
            .map_err(|f| omnipanel_core::error::Error::internal(f.message))?;
        assert_eq!(client.name(), "infer");
        let limited = door
            .admit(&headers(&format!("Bearer {infer}")), remote(), Scope::Infer)
            .unwrap_err();
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.retry_after, Some(60));

        let open = Door::new(tokens, true);
        assert!(
            open.admit(&HeaderMap::new(), local(), Scope::Infer)
                .is_ok_and(|c| c.grant.is_none())
        );
        assert!(
            open.admit(&headers("Bearer dummy"), local(), Scope::Infer)
                .is_ok()
        );
        assert!(
            open.admit(&HeaderMap::new(), remote(), Scope::Infer)
                .is_err()
        );
        assert!(
            open.admit(&HeaderMap::new(), local(), Scope::Write)
                .is_err(),
            "pulls need a token"
        );
        Ok(())
    }
}
