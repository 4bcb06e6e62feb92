//! Scripted faults: a queue of misbehaviours that matching REST requests
//! consume in order, and the log of the ones consumed.

use serde::{Deserialize, Serialize};

/// What a fault does to the request that consumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Sleep `delayMs`, then handle the request normally.
    #[serde(rename = "delay")]
    Delay,
    /// Answer `502` with an HTML page; the request is not executed.
    #[serde(rename = "html")]
    Html,
    /// Execute, then send only the first half of the JSON body.
    #[serde(rename = "truncated")]
    Truncated,
    /// Answer `500 INTERNAL_SERVER_ERROR`; the request is not executed.
    #[serde(rename = "status500_before")]
    Status500Before,
    /// Execute (a message is stored), then answer `500 INTERNAL_SERVER_ERROR`.
    #[serde(rename = "status500_after")]
    Status500After,
    /// Execute (a message is stored), then close the connection without an answer.
    #[serde(rename = "drop_after_store")]
    DropAfterStore,
    /// Answer `401 expired_token`; the request is not executed.
    #[serde(rename = "expired_token")]
    ExpiredToken,
    /// Answer `400 MESSAGE_ADD_ERROR`; the request is not executed.
    #[serde(rename = "message_add_error")]
    MessageAddError,
    /// Answer `503 QUERY_LIMIT_EXCEEDED`; the request is not executed.
    #[serde(rename = "query_limit_exceeded")]
    QueryLimitExceeded,
    /// Answer `429 OPERATION_TIME_LIMIT`; the request is not executed.
    #[serde(rename = "operation_time_limit")]
    OperationTimeLimit,
    /// Execute and answer normally, then set the session of open-line chat
    /// `chatId` to `status` (the chat becomes the most recently updated):
    /// a dialogue that an operator closes, or takes, right after this
    /// request.
    #[serde(rename = "session_after")]
    SessionAfter,
}

impl FaultKind {
    /// Whether the REST method still runs when this fault is consumed.
    pub fn executes(self) -> bool {
        matches!(
            self,
            Self::Delay
                | Self::Truncated
                | Self::DropAfterStore
                | Self::Status500After
                | Self::SessionAfter
        )
    }
}

/// One fault as posted to `POST /_portal/faults`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Method to match (case-insensitive); any method when absent.
    pub method: Option<String>,
    /// What to do.
    pub kind: FaultKind,
    /// How many matching requests consume it (default 1).
    pub count: Option<u32>,
    /// Sleep before the fault takes effect, for any kind (default 0).
    pub delay_ms: Option<u64>,
    /// Chance (0 to 1) that a matching request takes it; a request that
    /// does not passes it by without using it up (default 1).
    pub probability: Option<f64>,
    /// Seed of the fault's own random sequence, so that which requests take
    /// a probabilistic fault is the same on every run (default 0).
    pub seed: Option<u64>,
    /// `session_after` only (required there): the open-line chat whose
    /// session changes.
    pub chat_id: Option<i64>,
    /// `session_after` only (required there): the session status the chat
    /// gets.
    pub status: Option<u8>,
}

/// A session change a `session_after` fault makes once its request ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionChange {
    /// The open-line chat.
    pub chat_id: i64,
    /// Its new session status.
    pub status: u8,
}

/// A fault waiting in the queue.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingFault {
    /// Lower-cased method it matches, or `null` for any.
    pub method: Option<String>,
    /// What it does.
    pub kind: FaultKind,
    /// Matching requests left to consume it.
    pub remaining: u32,
    /// Sleep before it takes effect.
    pub delay_ms: u64,
    /// Chance that a matching request takes it (listed only when below 1).
    #[serde(skip_serializing_if = "is_certain")]
    pub probability: f64,
    /// The session change of a `session_after` fault (listed as `chatId`
    /// and `status`).
    #[serde(flatten)]
    pub session: Option<SessionChange>,
    /// State of its random sequence.
    #[serde(skip)]
    rng: u64,
}

fn is_certain(probability: &f64) -> bool {
    *probability >= 1.0
}

impl PendingFault {
    /// Whether this matching request takes the fault: always at probability
    /// 1, otherwise by the next draw of the fault's own sequence.
    fn draw(&mut self) -> bool {
        if self.probability >= 1.0 {
            return true;
        }
        // SplitMix64: small, fast and the same on every platform.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < self.probability
    }
}

/// A fault a request consumed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRecord {
    /// Id of the request in `GET /_portal/requests`.
    pub request: u64,
    /// Lower-cased method of that request.
    pub method: String,
    /// What was done.
    pub kind: FaultKind,
    /// Whether the method ran.
    pub executed: bool,
    /// HTTP status the portal computed (a dropped connection sends none).
    pub status: u16,
    /// When, ISO-8601.
    pub at: String,
}

/// The fault taken by one request.
#[derive(Clone, Copy, Debug)]
pub struct FaultHit {
    /// What to do.
    pub kind: FaultKind,
    /// Sleep first.
    pub delay_ms: u64,
    /// What a `session_after` fault changes after the request ran.
    pub session: Option<SessionChange>,
}

/// Pending faults and the log of consumed ones.
#[derive(Debug, Default)]
pub struct FaultQueue {
    /// Faults not yet used up, in order.
    pub pending: Vec<PendingFault>,
    /// Faults consumed, in order.
    pub log: Vec<FaultRecord>,
}

impl FaultQueue {
    /// Appends faults; a `count` of 0, a probability outside 0..=1, a
    /// `session_after` fault without `chatId` and a known `status`, or
    /// `chatId` / `status` on another kind is an error.
    pub fn push(&mut self, specs: Vec<FaultSpec>) -> Result<usize, String> {
        if specs.iter().any(|s| s.count == Some(0)) {
            return Err("count must be at least 1".to_owned());
        }
        let sessions = specs
            .iter()
            .map(session_change)
            .collect::<Result<Vec<_>, _>>()?;
        if specs
            .iter()
            .filter_map(|s| s.probability)
            .any(|p| !(0.0..=1.0).contains(&p))
        {
            return Err("probability must be between 0 and 1".to_owned());
        }
        let added = specs.len();
        self.pending.extend(
            specs
                .into_iter()
                .zip(sessions)
                .map(|(s, session)| PendingFault {
                    method: s.method.map(|m| m.trim().to_lowercase()),
                    kind: s.kind,
                    remaining: s.count.unwrap_or(1),
                    delay_ms: s.delay_ms.unwrap_or(0),
                    probability: s.probability.unwrap_or(1.0),
                    session,
                    rng: s.seed.unwrap_or(0),
                }),
        );
        Ok(added)
    }

    /// Consumes one use of the first fault matching `method` (lower-cased)
    /// whose draw says it applies to this request.
    /// A fault naming a method also matches a `batch` that carries a command of it
    /// (`carried`: the batch's command methods).
    pub fn take(&mut self, method: &str, carried: &[String]) -> Option<FaultHit> {
        let index = self.pending.iter_mut().position(|f| {
            f.method
                .as_deref()
                .is_none_or(|m| m == method || carried.iter().any(|c| c == m))
                && f.draw()
        })?;
        let fault = &mut self.pending[index];
        let hit = FaultHit {
            kind: fault.kind,
            delay_ms: fault.delay_ms,
            session: fault.session,
        };
        fault.remaining -= 1;
        if fault.remaining == 0 {
            self.pending.remove(index);
        }
        Some(hit)
    }
}

/// The session change a spec asks for: required for `session_after`, not
/// allowed for other kinds.
fn session_change(spec: &FaultSpec) -> Result<Option<SessionChange>, String> {
    match (spec.kind, spec.chat_id, spec.status) {
        (FaultKind::SessionAfter, Some(chat_id), Some(status)) => {
            crate::state::session::check(status)?;
            Ok(Some(SessionChange { chat_id, status }))
        }
        (FaultKind::SessionAfter, _, _) => {
            Err("a session_after fault needs chatId and status".to_owned())
        }
        (_, None, None) => Ok(None),
        _ => Err("chatId and status belong to a session_after fault only".to_owned()),
    }
}

/// Body of the `html` fault: what a reverse proxy sends when the portal
/// behind it is down.
pub const BAD_GATEWAY_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<h1>502 Bad Gateway</h1>\n<p>The server returned an invalid or incomplete response.</p>\n</body>\n</html>\n";

/// The first half of `body`, as a connection cut mid-answer would leave it.
pub fn truncate(mut body: Vec<u8>) -> Vec<u8> {
    body.truncate(body.len() / 2);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: Option<&str>, kind: FaultKind, count: Option<u32>) -> FaultSpec {
        FaultSpec {
            method: method.map(str::to_owned),
            kind,
            count,
            delay_ms: None,
            probability: None,
            seed: None,
            chat_id: None,
            status: None,
        }
    }

    #[test]
    fn faults_are_consumed_in_order_by_matching_methods() {
        let mut q = FaultQueue::default();
        let pushed = q.push(vec![
            spec(
                Some("Imopenlines.CRM.message.add"),
                FaultKind::Html,
                Some(2),
            ),
            spec(None, FaultKind::Truncated, None),
        ]);
        assert_eq!(pushed, Ok(2));
        assert_eq!(
            q.take("profile", &[]).map(|h| h.kind),
            Some(FaultKind::Truncated)
        );
        assert_eq!(q.take("profile", &[]).map(|h| h.kind), None);
        assert_eq!(
            q.take("imopenlines.crm.message.add", &[]).map(|h| h.kind),
            Some(FaultKind::Html)
        );
        assert_eq!(
            q.take("imopenlines.crm.message.add", &[]).map(|h| h.kind),
            Some(FaultKind::Html)
        );
        assert!(q.take("imopenlines.crm.message.add", &[]).is_none());
    }

    #[test]
    fn probabilistic_faults_follow_their_seed() {
        let pattern = |seed| {
            let mut q = FaultQueue::default();
            let mut s = spec(None, FaultKind::Html, Some(1000));
            s.probability = Some(0.5);
            s.seed = Some(seed);
            assert_eq!(q.push(vec![s]), Ok(1));
            (0..64)
                .map(|_| q.take("profile", &[]).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
        let hits = pattern(7).iter().filter(|h| **h).count();
        assert!((16..=48).contains(&hits), "{hits}");
    }

    #[test]
    fn session_after_needs_a_chat_and_a_known_status() {
        let mut q = FaultQueue::default();
        let mut s = spec(None, FaultKind::SessionAfter, None);
        assert!(q.push(vec![s.clone()]).is_err());
        s.chat_id = Some(8773);
        assert!(q.push(vec![s.clone()]).is_err());
        s.status = Some(61);
        assert!(q.push(vec![s.clone()]).is_err());
        s.status = Some(60);
        assert_eq!(q.push(vec![s]), Ok(1));
        let mut other = spec(None, FaultKind::Html, None);
        other.status = Some(60);
        assert!(q.push(vec![other]).is_err());
        let hit = q.take("profile", &[]).map(|h| h.session);
        assert_eq!(
            hit,
            Some(Some(SessionChange {
                chat_id: 8773,
                status: 60
            }))
        );
    }

    #[test]
    fn zero_count_is_rejected() {
        let mut q = FaultQueue::default();
        assert!(q.push(vec![spec(None, FaultKind::Html, Some(0))]).is_err());
        assert!(q.pending.is_empty());
    }
}
