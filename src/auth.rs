//! Where the credentials come from and how they reach the portal.
//!
//! Two forms exist: an inbound webhook URL (`https://{portal}/rest/{user}/{secret}/`,
//! whose path *is* the secret) and an OAuth access token sent as the `auth` body
//! parameter to the portal's REST base (`https://{portal}/rest/`). Tokens never go in
//! a header (the portal's CORS allows only `origin, content-type, accept`) nor in a
//! query string. `Debug` output never shows a secret or token.

use std::fmt;

use crate::error::Error;

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
}

impl Webhook {
    /// Parses `http(s)://{host}/rest/{user}/{secret}/` (the trailing slash optional).
    ///
    /// The error text never repeats the URL, because the URL holds the secret.
    pub fn parse(url: &str) -> Result<Webhook, Error> {
        const SHAPE: &str = "webhookUrl must look like https://{portal}/rest/{user id}/{secret}/";
        let bad = |why: &str| Error::no_auth("", format!("{SHAPE} ({why})"));
        let url = url.trim();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            ("https://", rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            ("http://", rest)
        } else {
            return Err(bad("it must start with https:// or http://"));
        };
        if rest.contains(['?', '#', ' ']) {
            return Err(bad("it must not have a query, fragment or spaces"));
        }
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("the path is missing"))?;
        if host.is_empty() {
            return Err(bad("the portal host is missing"));
        }
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
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
        })
    }

    /// The URL prefix every method is appended to (holds the secret).
    pub fn base(&self) -> &str {
        &self.base
    }
}

impl Auth {
    /// Builds token auth from a portal `domain` (`portal.bitrix24.com`, optionally with
    /// a scheme) or a full `client_endpoint` (`https://portal.bitrix24.com/rest/`).
    pub fn token(
        domain: Option<&str>,
        client_endpoint: Option<&str>,
        access_token: &str,
    ) -> Result<Auth, Error> {
        let access_token = access_token.trim();
        if access_token.is_empty() {
            return Err(Error::no_auth("", "accessToken is empty"));
        }
        let endpoint = match (client_endpoint, domain) {
            (Some(ep), _) if !ep.trim().is_empty() => {
                let ep = ep.trim();
                if !(ep.starts_with("https://") || ep.starts_with("http://")) {
                    return Err(Error::no_auth(
                        "",
                        "clientEndpoint must be a URL like https://portal.bitrix24.com/rest/",
                    ));
                }
                if ep.ends_with('/') {
                    ep.to_owned()
                } else {
                    format!("{ep}/")
                }
            }
            (_, Some(d)) if !d.trim().is_empty() => {
                let d = d.trim().trim_end_matches('/');
                let (scheme, host) = match d.split_once("://") {
                    Some((s, h)) if s == "https" || s == "http" => (s, h),
                    Some(_) => {
                        return Err(Error::no_auth("", "domain must be a host name"));
                    }
                    None => ("https", d),
                };
                if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
                    return Err(Error::no_auth(
                        "",
                        "domain must be a host name like portal.bitrix24.com",
                    ));
                }
                format!("{scheme}://{host}/rest/")
            }
            _ => {
                return Err(Error::no_auth(
                    "",
                    "token auth needs a domain or a clientEndpoint",
                ))
            }
        };
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
        format!("{base}{method}")
    }

    /// The portal origin (scheme and host), safe to show: it holds no secret.
    pub fn origin(&self) -> &str {
        let url = match self {
            Auth::Webhook(w) => &w.base,
            Auth::Token { endpoint, .. } => endpoint,
        };
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let host_end = url
            .get(after_scheme..)
            .and_then(|rest| rest.find('/'))
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
            let w = Webhook::parse(url).expect("valid");
            assert_eq!(w.base(), "https://portal.example/rest/1/secret/");
        }
        let w = Webhook::parse("http://127.0.0.1:8080/rest/12/abc").expect("valid");
        assert_eq!(
            Auth::Webhook(w).url("profile"),
            "http://127.0.0.1:8080/rest/12/abc/profile"
        );
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
        ] {
            let e = Webhook::parse(url).expect_err(url);
            assert_eq!(e.code(), "NO_AUTH", "{url}");
            assert!(!e.to_string().contains("topsecret"), "{e}");
        }
    }

    #[test]
    fn token_auth_from_domain_or_endpoint() {
        let a = Auth::token(Some("portal.bitrix24.com"), None, "tok").expect("valid");
        assert_eq!(a.url("profile"), "https://portal.bitrix24.com/rest/profile");
        let a = Auth::token(None, Some("http://127.0.0.1:9/rest"), "tok").expect("valid");
        assert_eq!(a.url("profile"), "http://127.0.0.1:9/rest/profile");
        let a = Auth::token(Some("http://localhost:3000/"), None, "tok").expect("valid");
        assert_eq!(a.url("m"), "http://localhost:3000/rest/m");
        assert_eq!(a.origin(), "http://localhost:3000");
        assert_eq!(
            Auth::token(Some("p"), None, " ").expect_err("empty").code(),
            "NO_AUTH"
        );
        assert!(Auth::token(None, None, "t").is_err());
        assert!(Auth::token(Some("a/b"), None, "t").is_err());
        assert!(Auth::token(None, Some("portal/rest/"), "t").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let w = Auth::Webhook(Webhook::parse("https://p.example/rest/1/hooksecret1/").expect("ok"));
        let t = Auth::token(Some("p.example"), None, "tokensecret2").expect("ok");
        let shown = format!("{w:?} {t:?} {:#?}", w);
        assert!(!shown.contains("hooksecret1"), "{shown}");
        assert!(!shown.contains("tokensecret2"), "{shown}");
        assert!(shown.contains("https://p.example"));
    }
}
