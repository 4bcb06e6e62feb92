//! Checking presented credentials the way the server's OAuth and webhook
//! handlers do, and making new random secrets.

use crate::envelope::RestError;
use crate::request::Presented;
use crate::state::{AuthKind, Store};

/// Who is calling, once credentials are accepted.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user the webhook or token belongs to.
    pub user_id: i64,
    /// How the caller authenticated.
    pub kind: AuthKind,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Key of the operating-time budget: all tokens belong to one
    /// application, each webhook has its own.
    pub budget: String,
}

/// Checks credentials for a method in `scope` (`None` = global scope, no
/// scope check). Order and texts follow SRV-OAUTH and SRV-APAUTH; every
/// failure is a `401`.
pub fn authenticate(
    store: &Store,
    presented: &Presented,
    scope: Option<&str>,
    now: f64,
) -> Result<Caller, RestError> {
    let caller = match presented {
        Presented::Nothing => {
            return Err(RestError::unauthorized(
                "NO_AUTH_FOUND",
                "Wrong authorization data",
            ))
        }
        Presented::Token(value) => {
            let token = store
                .credentials
                .tokens
                .iter()
                .find(|t| t.value == *value)
                .ok_or_else(|| {
                    RestError::unauthorized("invalid_token", "The access token provided is invalid")
                })?;
            if token.expires_at <= now {
                return Err(RestError::expired_token());
            }
            if !in_scope(&token.scope, scope) {
                return Err(RestError::unauthorized(
                    "insufficient_scope",
                    "The request requires higher privileges than provided by the access token",
                ));
            }
            Caller {
                user_id: token.user_id,
                kind: AuthKind::Token,
                scope: token.scope.clone(),
                budget: "app".to_owned(),
            }
        }
        Presented::Webhook { user, secret } => {
            let invalid =
                || RestError::unauthorized("INVALID_CREDENTIALS", "Invalid request credentials");
            let user_id = webhook_user(store, user).ok_or_else(invalid)?;
            let hook = store
                .credentials
                .webhooks
                .iter()
                .find(|w| w.user_id == user_id && w.secret == *secret)
                .ok_or_else(invalid)?;
            if !in_scope(&hook.scope, scope) {
                return Err(RestError::unauthorized(
                    "insufficient_scope",
                    "The request requires higher privileges than provided by the webhook token",
                ));
            }
            Caller {
                user_id,
                kind: AuthKind::Webhook,
                scope: hook.scope.clone(),
                budget: format!("webhook#{}", hook.id),
            }
        }
    };
    let active = store
        .directory
        .users
        .get(&caller.user_id)
        .is_some_and(|u| u.active);
    if !active {
        return Err(RestError::unauthorized(
            "authorization_error",
            "Unable to authorize user",
        ));
    }
    Ok(caller)
}

fn in_scope(granted: &[String], scope: Option<&str>) -> bool {
    scope.is_none_or(|s| granted.iter().any(|g| g == s))
}

/// The webhook's user segment: a canonical integer is a user id (existing or
/// not); anything else is the login of an active user.
fn webhook_user(store: &Store, segment: &str) -> Option<i64> {
    match segment.parse::<i64>() {
        Ok(id) if id.to_string() == segment => Some(id),
        _ => store
            .directory
            .users
            .values()
            .find(|u| u.active && u.login == segment)
            .map(|u| u.id),
    }
}

/// A random credential of `bytes` random bytes, hex-encoded. Falls back to
/// mixing the clock and a counter if the OS generator is unavailable.
pub fn random_credential(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        fallback_fill(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn fallback_fill(buf: &mut [u8]) {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let word = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}
