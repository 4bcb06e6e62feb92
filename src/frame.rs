//! The parent-window protocol of a Bitrix24 iframe app, without BX24.js.
//!
//! The portal opens the app in an iframe whose `window.name` is
//! `DOMAIN|PROTOCOL|APP_SID`. The app talks to the parent with `postMessage` strings
//! `command:params:callbackId:appSid` sent to `http(s)://DOMAIN`; the parent answers
//! `callbackId:JSON`. This module holds the pure part: reading the bootstrap, building
//! commands and reading answers. The package's JS layer only moves the strings.

/// What `window.name` tells a framed app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// The portal host (with a port when not the default one).
    pub domain: String,
    /// Whether the portal is served over https (`PROTOCOL` = 1).
    pub https: bool,
    /// The app's session id; every command carries it.
    pub app_sid: String,
}

impl Bootstrap {
    /// Reads `DOMAIN|PROTOCOL|APP_SID`; `None` when the frame was not opened by a portal.
    pub fn parse(window_name: &str) -> Option<Bootstrap> {
        let [domain, protocol, app_sid] = crate::text::split_byte(window_name, b'|')[..] else {
            return None;
        };
        if domain.is_empty() || app_sid.is_empty() {
            return None;
        }
        if crate::text::contains_any(domain, b"/?# @") {
            return None;
        }
        let https = match protocol {
            "1" => true,
            "0" | "" => false,
            _ => return None,
        };
        Some(Bootstrap {
            domain: domain.to_owned(),
            https,
            app_sid: app_sid.to_owned(),
        })
    }

    /// The parent window's origin, the only one messages are accepted from; the
    /// default port is dropped, as browsers report origins.
    pub fn parent_origin(&self) -> String {
        let (scheme, default_port) = if self.https {
            ("https", ":443")
        } else {
            ("http", ":80")
        };
        let host = self
            .domain
            .strip_suffix(default_port)
            .unwrap_or(&self.domain);
        [scheme, "://", host].concat()
    }

    /// The message for `command` with `params` (JSON text, or empty) and a callback id.
    pub fn command(&self, command: &str, params_json: &str, callback_id: &str) -> String {
        [
            command,
            ":",
            params_json,
            ":",
            callback_id,
            ":",
            &self.app_sid,
        ]
        .concat()
    }
}

/// Splits a parent answer `callbackId:JSON` into the id and the JSON text.
pub fn parse_reply(data: &str) -> Option<(&str, &str)> {
    let (id, json) = crate::text::split_once_byte(data, b':')?;
    (!id.is_empty()).then_some((id, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_name_bootstraps_the_parent_origin() {
        let b = Bootstrap::parse("portal.example|1|abc123").expect("framed");
        assert_eq!(b.parent_origin(), "https://portal.example");
        assert_eq!(b.app_sid, "abc123");
        let b = Bootstrap::parse("127.0.0.1:8080|0|s").expect("framed");
        assert_eq!(b.parent_origin(), "http://127.0.0.1:8080");
        let b = Bootstrap::parse("p.example:443|1|s").expect("framed");
        assert_eq!(b.parent_origin(), "https://p.example");
        for bad in [
            "",
            "appframe",
            "p|1",
            "p|1|",
            "|1|s",
            "p|2|s",
            "p|1|s|x",
            "evil.com/x|1|s",
            "a@b|1|s",
        ] {
            assert_eq!(Bootstrap::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn commands_and_replies_follow_the_wire_format() {
        let b = Bootstrap::parse("p.example|1|SID").expect("framed");
        assert_eq!(b.command("getInitData", "", "cb1"), "getInitData::cb1:SID");
        let p = r#"{"width":"100%","height":420}"#;
        assert_eq!(
            b.command("resizeWindow", p, "cb2"),
            r#"resizeWindow:{"width":"100%","height":420}:cb2:SID"#
        );
        assert_eq!(
            parse_reply(r#"cb2:{"a":"x:y"}"#),
            Some(("cb2", r#"{"a":"x:y"}"#))
        );
        assert_eq!(parse_reply("nocolon"), None);
        assert_eq!(parse_reply(":{}"), None);
    }
}
