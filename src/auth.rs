//! Where the credentials come from and how they reach the portal.
//!
//! Two forms exist: an inbound webhook URL (`https://{portal}/rest/{user}/{secret}/`,
//! whose path *is* the secret) and an OAuth access token sent as the `auth` body
//! parameter to the portal's REST base (`https://{portal}/rest/`). Tokens never go in
//! a header (the portal's CORS allows only `origin, content-type, accept`) nor in a
//! query string. `Debug` output never shows a secret or token.
//!
//! Also here: the token state's raw material, read from what each token source hands
//! over (a refresh function's answer, `BX24.getAuth()`, the parent window's
//! `getInitData`), and the transport-safety rules for the URLs a caller passes.

use std::fmt;

use crate::error::Error;
use crate::frame::Bootstrap;
use crate::json::{JsonView, Shape};
use crate::text;

/// An access token and, when known, when it expires.
#[derive(Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub access_token: String,
    /// Expiry in milliseconds since the Unix epoch, when the source says.
    pub expires_at_ms: Option<f64>,
    /// The refresh token that came with it, when the source gives one (OAuth).
    pub refresh_token: Option<String>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"***")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish()
    }
}

fn string<J: JsonView>(v: Option<J>) -> Option<String> {
    match v?.shape() {
        Shape::String(s) if !text::trim(&s).is_empty() => Some(s),
        _ => None,
    }
}

/// A number, or a string of digits (a real parent sends `AUTH_EXPIRES` as text).
fn number<J: JsonView>(v: Option<J>) -> Option<f64> {
    match v?.shape() {
        Shape::Number(n) if n.is_finite() => Some(n),
        Shape::String(s) => text::parse_u64(text::trim(&s)).map(|n| n as f64),
        _ => None,
    }
}

/// What a refresh function resolved to: a token string, or an object with
/// `accessToken`/`access_token` and optionally `expires` (Unix seconds) or
/// `expires_in` (seconds from `now_ms`), as OAuth answers.
pub fn token_from_refresh<J: JsonView>(value: &J, now_ms: f64) -> Option<Token> {
    if let Shape::String(s) = value.shape() {
        return (!text::trim(&s).is_empty()).then_some(Token {
            access_token: s,
            expires_at_ms: None,
            refresh_token: None,
        });
    }
    let access_token =
        string(value.get("accessToken")).or_else(|| string(value.get("access_token")))?;
    let expires_at_ms = number(value.get("expiresAt"))
        .or_else(|| number(value.get("expires")).map(|s| s * 1000.0))
        .or_else(|| number(value.get("expires_in")).map(|s| now_ms + s * 1000.0));
    let refresh_token =
        string(value.get("refreshToken")).or_else(|| string(value.get("refresh_token")));
    Some(Token {
        access_token,
        expires_at_ms,
        refresh_token,
    })
}

/// The OAuth server's refusal in a refresh function's answer (`{error,
/// error_description}`), as a sentence that says what to do.
pub fn oauth_refusal<J: JsonView>(value: &J) -> Option<String> {
    let error = string(value.get("error"))?;
    let mut out = ["the OAuth server refused the refresh: ", &error].concat();
    if let Some(d) = string(value.get("error_description")) {
        out.push_str(" (");
        out.push_str(&d);
        out.push(')');
    }
    out.push_str(match error.as_str() {
        "invalid_grant" => "; the refresh token is no longer valid: the app must be authorized again (install or open it on the portal)",
        "invalid_client" => "; check the app's client_id and client_secret",
        _ => "",
    });
    Some(out)
}

/// Tokens as a store holds them: `{accessToken, refreshToken?, expiresAt?}` (`null`:
/// none).
pub fn token_from_store<J: JsonView>(value: &J) -> Option<Token> {
    let access_token = string(value.get("accessToken"))?;
    Some(Token {
        access_token,
        expires_at_ms: number(value.get("expiresAt")),
        refresh_token: string(value.get("refreshToken")),
    })
}

/// Tokens as a store holds them, as JSON text (`null` for none).
pub fn store_json(token: Option<&Token>) -> String {
    let Some(t) = token else {
        return "null".to_owned();
    };
    let mut o = String::from("{\"accessToken\":");
    crate::json::write_str(&mut o, &t.access_token);
    if let Some(r) = &t.refresh_token {
        o.push_str(",\"refreshToken\":");
        crate::json::write_str(&mut o, r);
    }
    if let Some(e) = t.expires_at_ms {
        o.push_str(",\"expiresAt\":");
        text::push_decimal(&mut o, e.max(0.0) as u64);
    }
    o.push('}');
    o
}

/// `BX24.getAuth()`: `{access_token, expires_in, domain}` where `expires_in` is the
/// absolute expiry in milliseconds, or `false` once expired. Gives the token and the
/// portal host.
pub fn token_from_bx24<J: JsonView>(auth: &J) -> Option<(Token, String)> {
    let access_token = string(auth.get("access_token"))?;
    let domain = string(auth.get("domain")).unwrap_or_default();
    Some((
        Token {
            access_token,
            expires_at_ms: number(auth.get("expires_in")),
            refresh_token: None,
        },
        domain,
    ))
}

/// A frame answer's token (`AUTH_ID`, `AUTH_EXPIRES` in seconds from `now_ms`).
pub fn token_from_frame<J: JsonView>(answer: &J, now_ms: f64) -> Option<Token> {
    Some(Token {
        access_token: string(answer.get("AUTH_ID"))?,
        expires_at_ms: number(answer.get("AUTH_EXPIRES")).map(|s| now_ms + s * 1000.0),
        refresh_token: None,
    })
}

/// The REST base of a framed app: `PROTOCOL`, `DOMAIN` and `PATH` of `getInitData`,
/// each falling back to what `window.name` said (and `/rest`).
pub fn frame_endpoint<J: JsonView>(init: &J, boot: &Bootstrap) -> String {
    let https = match init.get("PROTOCOL").map(|p| p.shape()) {
        Some(Shape::Number(n)) => n == 1.0,
        Some(Shape::String(s)) => s == "1",
        _ => boot.https,
    };
    let domain = string(init.get("DOMAIN")).unwrap_or_else(|| boot.domain.clone());
    let path = string(init.get("PATH")).unwrap_or_else(|| "/rest".to_owned());
    let scheme = if https { "https" } else { "http" };
    [
        scheme,
        "://",
        &domain,
        text::trim_end_byte(&path, b'/'),
        "/",
    ]
    .concat()
}

/// Whether plain `http` to `host` (with an optional port) stays on this machine:
/// `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix("[") {
        return text::before_byte(v6, b']') == "::1";
    } else {
        text::rsplit_once_byte(host, b':').map_or(host, |(h, _)| h)
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let octets = text::split_byte(name, b'.');
    octets.len() == 4
        && octets.first() == Some(&"127")
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && text::parse_u64(o).is_some_and(|n| n <= 255)
        })
}

/// The rules for a URL's authority that a caller passes: no user name or password in
/// it (they would be echoed by runtimes and sent to the portal), and plain `http`
/// only to this machine unless `allow_insecure_http`. The texts never repeat the URL.
fn check_authority(
    scheme: &str,
    host: &str,
    allow_insecure_http: bool,
) -> Result<(), &'static str> {
    if text::find_byte(host, b'@').is_some() {
        return Err(
            "the URL has a user name or password in it; remove them (the portal does not use them)",
        );
    }
    if scheme == "http" && !allow_insecure_http && !is_loopback(host) {
        return Err("plain http would send the secret in clear text; use https, or pass allowInsecureHttp: true for a portal you trust on this network");
    }
    Ok(())
}

/// Credentials for one portal.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// An inbound webhook: calls go to `{base}{method}`.
    Webhook(Webhook),
    /// An OAuth access token sent as `auth` in the body to `{endpoint}{method}`.
    Token {
        /// The REST base, ending in `/`, e.g. `https://portal.bitrix24.com/rest/`.
        endpoint: String,
        /// The current access token.
        access_token: String,
    },
}

/// A parsed inbound webhook URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    base: String,
    secret: String,
    user: u64,
}

impl Webhook {
    /// Parses `http(s)://{host}/rest/{user}/{secret}/` (the trailing slash optional);
    /// plain `http` only to this machine unless `allow_insecure_http`.
    ///
    /// The error text never repeats the URL, because the URL holds the secret.
    pub fn parse(url: &str, allow_insecure_http: bool) -> Result<Webhook, Error> {
        const SHAPE: &str = "webhookUrl must look like https://{portal}/rest/{user id}/{secret}/";
        let bad = |why: &str| Error::no_auth("", [SHAPE, " (", why, ")"].concat());
        let url = text::trim(url);
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(bad("it must start with https:// or http://"));
        };
        if text::contains_any(rest, b"?# ") || text::contains_control(rest) {
            return Err(bad(
                "it must not have a query, fragment, spaces or control characters",
            ));
        }
        let (host, path) =
            text::split_once_byte(rest, b'/').ok_or_else(|| bad("the path is missing"))?;
        if host.is_empty() {
            return Err(bad("the portal host is missing"));
        }
        check_authority(scheme, host, allow_insecure_http).map_err(bad)?;
        let segments = text::split_byte(text::trim_end_byte(path, b'/'), b'/');
        let [prefix @ .., "rest", user, secret] = segments.as_slice() else {
            return Err(bad("the path must end in /rest/{user id}/{secret}/"));
        };
        if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the user id must be a number"));
        }
        if secret.is_empty() {
            return Err(bad("the secret is empty"));
        }
        let mut base = String::with_capacity(url.len() + 1);
        base.push_str(scheme);
        base.push_str("://");
        base.push_str(host);
        base.push('/');
        for p in prefix {
            base.push_str(p);
            base.push('/');
        }
        base.push_str("rest/");
        base.push_str(user);
        base.push('/');
        base.push_str(secret);
        base.push('/');
        Ok(Webhook {
            base,
            secret: (*secret).to_owned(),
            user: text::parse_u64(user).unwrap_or(0),
        })
    }

    /// The URL prefix every method is appended to (holds the secret).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The user the webhook acts as (`/rest/{user}/…`; 0 for a number too large).
    pub fn user(&self) -> u64 {
        self.user
    }
}

impl Auth {
    /// Builds token auth from a portal `domain` (`portal.bitrix24.com`, optionally with
    /// a scheme) or a full `client_endpoint` (`https://portal.bitrix24.com/rest/`).
    ///
    /// Plain `http` is refused for any host but this machine's unless
    /// `allow_insecure_http` (a framed app follows its portal's own scheme).
    pub fn token(
        domain: Option<&str>,
        client_endpoint: Option<&str>,
        access_token: &str,
        allow_insecure_http: bool,
    ) -> Result<Auth, Error> {
        let access_token = text::trim(access_token);
        if access_token.is_empty() {
            return Err(Error::no_auth("", "accessToken is empty"));
        }
        let endpoint = match (client_endpoint, domain) {
            (Some(ep), _) if !text::trim(ep).is_empty() => {
                let ep = text::trim(ep);
                if !(ep.starts_with("https://") || ep.starts_with("http://")) {
                    return Err(Error::no_auth(
                        "",
                        "clientEndpoint must be a URL like https://portal.bitrix24.com/rest/",
                    ));
                }
                let ep = if ep.ends_with("/") {
                    ep.to_owned()
                } else {
                    [ep, "/"].concat()
                };
                // Without it every call is the portal's 404 page, whatever the method.
                if !ep.ends_with("/rest/") {
                    return Err(Error::no_auth(
                        "",
                        "clientEndpoint must end in /rest/, like https://portal.bitrix24.com/rest/ (the client_endpoint of the portal's OAuth answer)",
                    ));
                }
                ep
            }
            (_, Some(d)) if !text::trim(d).is_empty() => {
                let d = text::trim_end_byte(text::trim(d), b'/');
                let (scheme, host) = match text::split_once(d, "://") {
                    Some((s, h)) if s == "https" || s == "http" => (s, h),
                    Some(_) => {
                        return Err(Error::no_auth("", "domain must be a host name"));
                    }
                    None => ("https", d),
                };
                if host.is_empty() || text::contains_any(host, b"/?# ") {
                    return Err(Error::no_auth(
                        "",
                        "domain must be a host name like portal.bitrix24.com",
                    ));
                }
                [scheme, "://", host, "/rest/"].concat()
            }
            _ => {
                return Err(Error::no_auth(
                    "",
                    "token auth needs a domain or a clientEndpoint",
                ))
            }
        };
        if text::contains_control(&endpoint) {
            return Err(Error::no_auth("", "the portal URL has control characters"));
        }
        let (scheme, rest) = text::split_once(&endpoint, "://").unwrap_or(("", &endpoint));
        let host = text::before_byte(rest, b'/');
        if host.is_empty() {
            return Err(Error::no_auth("", "the portal host is missing"));
        }
        check_authority(scheme, host, allow_insecure_http)
            .map_err(|why| Error::no_auth("", why))?;
        Ok(Auth::Token {
            endpoint,
            access_token: access_token.to_owned(),
        })
    }

    /// The secret this auth holds (webhook secret or access token), for redaction.
    pub fn secret(&self) -> &str {
        match self {
            Auth::Webhook(w) => &w.secret,
            Auth::Token { access_token, .. } => access_token,
        }
    }

    /// The URL for `method`: webhook base or REST endpoint, then the method name.
    pub fn url(&self, method: &str) -> String {
        let base = match self {
            Auth::Webhook(w) => &w.base,
            Auth::Token { endpoint, .. } => endpoint,
        };
        [base.as_str(), method].concat()
    }

    /// The portal origin (scheme and host), safe to show: it holds no secret.
    pub fn origin(&self) -> &str {
        let url = match self {
            Auth::Webhook(w) => &w.base,
            Auth::Token { endpoint, .. } => endpoint,
        };
        let after_scheme = text::find(url, "://").map_or(0, |i| i + 3);
        let host_end = url
            .get(after_scheme..)
            .and_then(|rest| text::find_byte(rest, b'/'))
            .map_or(url.len(), |i| after_scheme + i);
        url.get(..host_end).unwrap_or(url)
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Webhook(_) => f
                .debug_struct("Webhook")
                .field("portal", &self.origin())
                .field("secret", &"***")
                .finish(),
            Auth::Token { .. } => f
                .debug_struct("Token")
                .field("portal", &self.origin())
                .field("access_token", &"***")
                .finish(),
        }
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Auth::Webhook(self.clone()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_parse_with_or_without_trailing_slash() {
        for url in [
            "https://portal.example/rest/1/secret/",
            "https://portal.example/rest/1/secret",
            "  https://portal.example/rest/1/secret/  ",
        ] {
            let w = Webhook::parse(url, false).expect("valid");
            assert_eq!(w.base(), "https://portal.example/rest/1/secret/");
        }
        let w = Webhook::parse("http://127.0.0.1:8080/rest/12/abc", false).expect("valid");
        assert_eq!(
            Auth::Webhook(w).url("profile"),
            "http://127.0.0.1:8080/rest/12/abc/profile"
        );
    }

    #[test]
    fn token_endpoints_with_control_characters_are_refused() {
        for (domain, endpoint) in [
            (Some("por\ntal.example"), None),
            (None, Some("https://portal.example/re\nst/")),
        ] {
            let e = Auth::token(domain, endpoint, "tok", false).expect_err("refused");
            assert_eq!(e.code(), "NO_AUTH");
        }
    }

    #[test]
    fn bad_webhook_urls_are_no_auth_errors_without_the_secret() {
        for url in [
            "",
            "portal.example/rest/1/topsecret/",
            "ftp://portal.example/rest/1/topsecret/",
            "https://portal.example/1/topsecret/",
            "https://portal.example/rest/x/topsecret/",
            "https://portal.example/rest/1/topsecret/?a=1",
            "https:///rest/1/topsecret/",
            "https://portal.example/rest/1//",
            "https://portal.exa\nmple/rest/1/topsecret/",
            "https://portal.example/rest/1/top\u{0}secret/",
        ] {
            let e = Webhook::parse(url, false).expect_err(url);
            assert_eq!(e.code(), "NO_AUTH", "{url}");
            assert!(!e.to_string().contains("topsecret"), "{e}");
        }
    }

    #[test]
    fn token_auth_from_domain_or_endpoint() {
        let a = Auth::token(Some("portal.bitrix24.com"), None, "tok", false).expect("valid");
        assert_eq!(a.url("profile"), "https://portal.bitrix24.com/rest/profile");
        let a = Auth::token(None, Some("http://127.0.0.1:9/rest"), "tok", false).expect("valid");
        assert_eq!(a.url("profile"), "http://127.0.0.1:9/rest/profile");
        let a = Auth::token(Some("http://localhost:3000/"), None, "tok", false).expect("valid");
        assert_eq!(a.url("m"), "http://localhost:3000/rest/m");
        assert_eq!(a.origin(), "http://localhost:3000");
        assert_eq!(
            Auth::token(Some("p"), None, " ", false)
                .expect_err("empty")
                .code(),
            "NO_AUTH"
        );
        assert!(Auth::token(None, None, "t", false).is_err());
        assert!(Auth::token(Some("a/b"), None, "t", false).is_err());
        assert!(Auth::token(None, Some("portal/rest/"), "t", false).is_err());
    }

    #[test]
    fn user_info_and_remote_plain_http_are_refused_without_echoing_the_url() {
        for url in [
            "https://bob:Passw0rd@portal.example/rest/1/topsecret/",
            "https://bob@portal.example/rest/1/topsecret/",
            "http://portal.example/rest/1/topsecret/",
            "http://10.0.0.5:8080/rest/1/topsecret/",
            "http://127.0.0.1.evil.example/rest/1/topsecret/",
        ] {
            let e = Webhook::parse(url, false).expect_err(url);
            assert_eq!(e.code(), "NO_AUTH");
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("topsecret") && !shown.contains("Passw0rd"),
                "{shown}"
            );
        }
        assert!(
            Webhook::parse("http://portal.example/rest/1/s/", true).is_ok(),
            "opt-in"
        );
        assert!(
            Webhook::parse("https://bob:pw@portal.example/rest/1/s/", true).is_err(),
            "user-info is refused even with the opt-in"
        );
        for loopback in [
            "localhost:80",
            "127.0.0.1",
            "127.9.8.7:3000",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            let url = format!("http://{loopback}/rest/1/s/");
            assert!(Webhook::parse(&url, false).is_ok(), "{url}");
        }
        assert!(Auth::token(Some("http://portal.example"), None, "t", false).is_err());
        assert!(Auth::token(None, Some("http://a:b@127.0.0.1/rest/"), "t", true).is_err());
        assert!(Auth::token(None, Some("http://192.168.1.2/rest/"), "t", true).is_ok());
    }

    #[test]
    fn tokens_are_read_from_each_source() {
        use serde_json::json;
        let t = token_from_refresh(&json!({"access_token": "a1", "expires_in": 3600}), 1000.0)
            .expect("token");
        assert_eq!(
            (t.access_token.as_str(), t.expires_at_ms),
            ("a1", Some(3_601_000.0))
        );
        let t =
            token_from_refresh(&json!({"accessToken": "a2", "expires": 20}), 0.0).expect("token");
        assert_eq!(t.expires_at_ms, Some(20_000.0));
        assert_eq!(
            token_from_refresh(&json!("a3"), 0.0).map(|t| t.access_token),
            Some("a3".into())
        );
        assert_eq!(token_from_refresh(&json!({"token": "x"}), 0.0), None);
        assert_eq!(token_from_refresh(&json!(""), 0.0), None);
        let (t, domain) = token_from_bx24(
            &json!({"access_token": "b", "expires_in": 5.0, "domain": "p.example"}),
        )
        .expect("bx24");
        assert_eq!((t.expires_at_ms, domain.as_str()), (Some(5.0), "p.example"));
        assert_eq!(token_from_bx24(&json!(false)), None);
        let t = token_from_frame(&json!({"AUTH_ID": "f", "AUTH_EXPIRES": "3600"}), 10.0)
            .expect("frame");
        assert_eq!(t.expires_at_ms, Some(3_600_010.0));
        let boot = Bootstrap::parse("p.example:8080|0|sid").expect("boot");
        assert_eq!(
            frame_endpoint(&json!({}), &boot),
            "http://p.example:8080/rest/"
        );
        assert_eq!(
            frame_endpoint(
                &json!({"PROTOCOL": 1, "DOMAIN": "q.example", "PATH": "/rest/"}),
                &boot
            ),
            "https://q.example/rest/"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let w = Auth::Webhook(
            Webhook::parse("https://p.example/rest/1/hooksecret1/", false).expect("ok"),
        );
        let t = Auth::token(Some("p.example"), None, "tokensecret2", false).expect("ok");
        let shown = format!("{w:?} {t:?} {:#?}", w);
        assert!(!shown.contains("hooksecret1"), "{shown}");
        assert!(!shown.contains("tokensecret2"), "{shown}");
        assert!(shown.contains("https://p.example"));
    }
}
