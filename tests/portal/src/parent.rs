//! The parent side of an iframe app: a page that opens an app URL the way Bitrix24
//! does and answers the app's `postMessage` commands.
//!
//! `GET /_portal/frame?app=URL` issues an access token for the chosen user, names the
//! iframe `DOMAIN|PROTOCOL|APP_SID`, and POSTs `AUTH_ID`, `AUTH_EXPIRES`, `REFRESH_ID`,
//! `PLACEMENT`, `PLACEMENT_OPTIONS`... into it (or, with `transport=get`, puts them in
//! the query, so a static host works). The page's script accepts messages only from
//! the app's origin and with the frame's APP_SID, answers `getInitData`,
//! `refreshAuth` (a new token from this portal, with the frame's lifetime),
//! `resizeWindow`, `setTitle`, `getInterface`, the option setters, and acknowledges
//! the protocol's other commands; it reports every decision to
//! `POST /_portal/frame/log`, readable with `GET /_portal/frame/log`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::random_credential;
use crate::envelope::iso8601;
use crate::state::{App, DEFAULT_USER};

/// Frames opened by the parent page and the page's log.
#[derive(Default)]
pub struct Frames {
    sessions: Vec<Session>,
    log: Vec<LogEntry>,
}

struct Session {
    sid: String,
    user_id: i64,
    ttl: Option<f64>,
}

/// What the parent page did with one message.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogEntry {
    #[serde(default)]
    command: String,
    #[serde(default)]
    accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    #[serde(default)]
    at: String,
}

/// The routes of the parent page.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/_portal/frame", get(page))
        .route("/_portal/frame/refresh", axum::routing::post(refresh))
        .route("/_portal/frame/log", get(read_log).post(write_log))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FrameQuery {
    app: String,
    #[serde(default)]
    placement: Option<String>,
    #[serde(default)]
    options: Option<String>,
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    ttl: Option<f64>,
    #[serde(default)]
    transport: Option<String>,
}

fn bad(text: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{text}\n")).into_response()
}

/// The origin of an absolute http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// Text safe inside HTML text and double-quoted attributes.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON safe inside a `<script>` element.
fn script_json(v: &Value) -> String {
    v.to_string().replace("</", "<\\/")
}

/// Percent-encodes a query value.
fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn page(State(app): State<Arc<App>>, Query(query): Query<FrameQuery>) -> Response {
    let Some(app_origin) = origin_of(&query.app) else {
        return bad("app must be an http(s) URL");
    };
    let user_id = query.user_id.unwrap_or(DEFAULT_USER);
    let user = app.lock().directory.users.get(&user_id).cloned();
    let Some(user) = user else {
        return bad("no such user on this portal");
    };
    let placement = query.placement.unwrap_or_else(|| "DEFAULT".to_owned());
    let options = query.options.unwrap_or_else(|| "{}".to_owned());
    if serde_json::from_str::<Value>(&options).map_or(true, |v| !v.is_object()) {
        return bad("options must be a JSON object");
    }
    let ttl = query.ttl.filter(|t| *t > 0.0);
    let issued = app.issue_token(user_id, app.config.scope.clone(), ttl);
    let sid = random_credential(16);
    app.lock().frames.sessions.push(Session {
        sid: sid.clone(),
        user_id,
        ttl,
    });
    let domain = app
        .base_url
        .split_once("://")
        .map_or(app.base_url.as_str(), |(_, host)| host)
        .to_owned();
    let frame_name = format!("{domain}|0|{sid}");
    let expires_in = issued.ttl.round() as i64;
    let fields: Vec<(&str, String)> = vec![
        ("AUTH_ID", issued.access_token.clone()),
        ("AUTH_EXPIRES", expires_in.to_string()),
        ("REFRESH_ID", issued.refresh_token.clone()),
        ("SERVER_ENDPOINT", format!("{}/rest/", app.base_url)),
        ("member_id", app.secrets.member_id.clone()),
        ("status", "L".to_owned()),
        ("PLACEMENT", placement.clone()),
        ("PLACEMENT_OPTIONS", options.clone()),
    ];
    let boot = format!(
        "DOMAIN={}&PROTOCOL=0&LANG=en&APP_SID={}",
        q(&domain),
        q(&sid)
    );
    let joiner = if query.app.contains('?') { '&' } else { '?' };
    let get_transport = query.transport.as_deref() == Some("get");
    let (src, form) = if get_transport {
        let mut url = format!("{}{joiner}{boot}", query.app);
        for (k, v) in &fields {
            url.push_str(&format!("&{k}={}", q(v)));
        }
        (url, String::new())
    } else {
        let inputs: String = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    r#"<input type="hidden" name="{k}" value="{}">"#,
                    html_escape(v)
                )
            })
            .collect();
        let action = format!("{}{joiner}{boot}", query.app);
        let form = format!(
            r#"<form id="b24-launch" method="post" action="{}" target="{}">{inputs}</form>"#,
            html_escape(&action),
            html_escape(&frame_name)
        );
        ("about:blank".to_owned(), form)
    };
    let init = json!({
        "LANG": "en",
        "DOMAIN": domain,
        "PROTOCOL": 0,
        "PATH": "/rest",
        "AUTH_ID": issued.access_token,
        "AUTH_EXPIRES": expires_in,
        "REFRESH_ID": issued.refresh_token,
        "MEMBER_ID": app.secrets.member_id,
        "FIRST_RUN": false,
        "IS_ADMIN": user.admin,
        "INSTALL": false,
        "USER_OPTIONS": {},
        "APP_OPTIONS": {},
        "PLACEMENT": placement,
        "PLACEMENT_OPTIONS": options,
    });
    let heading = match (placement.as_str(), serde_json::from_str::<Value>(&options)) {
        (p, Ok(o)) if p.starts_with("CRM_") => {
            let kind = p
                .trim_start_matches("CRM_")
                .split('_')
                .next()
                .unwrap_or_default()
                .to_lowercase();
            let id = o
                .get("ID")
                .map(|v| v.to_string().trim_matches('"').to_owned());
            format!("{kind} #{}", id.unwrap_or_default())
        }
        _ => "Application".to_owned(),
    };
    let user_name = format!("{} {}", user.name, user.last_name);
    Html(render(&PageParts {
        heading: &heading,
        user: &user_name,
        frame_name: &frame_name,
        src: &src,
        form: &form,
        app_origin: &app_origin,
        sid: &sid,
        init: &init,
    }))
    .into_response()
}

struct PageParts<'a> {
    heading: &'a str,
    user: &'a str,
    frame_name: &'a str,
    src: &'a str,
    form: &'a str,
    app_origin: &'a str,
    sid: &'a str,
    init: &'a Value,
}

fn render(p: &PageParts<'_>) -> String {
    let mut heading = p.heading.to_owned();
    if let Some(first) = heading.get(..1) {
        heading = format!(
            "{}{}",
            first.to_uppercase(),
            heading.get(1..).unwrap_or_default()
        );
    }
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading} — local portal</title>
<style>
body {{ margin: 0; font: 14px/1.4 "Helvetica Neue", Arial, sans-serif; background: #eef2f4; color: #333; }}
.top {{ background: #2fc6f6; color: #fff; padding: 10px 22px; display: flex; justify-content: space-between; font-weight: 600; }}
.top span {{ font-weight: 400; opacity: .9; }}
.wrap {{ padding: 18px 22px; }}
h1 {{ font-size: 22px; font-weight: 400; margin: 0 0 12px; }}
.tabs {{ display: flex; gap: 4px; margin-bottom: 14px; }}
.tabs span {{ padding: 7px 14px; border-radius: 16px; background: #fff; color: #828b95; }}
.tabs span.on {{ background: #535c69; color: #fff; }}
#b24-title {{ font-size: 15px; margin: 0 0 10px; color: #535c69; min-height: 1em; }}
#b24-app {{ width: 100%; height: 300px; border: 0; display: block; border-radius: 10px; background: transparent; }}
</style></head>
<body>
<div class="top">Bitrix24 · local portal <span>{user}</span></div>
<div class="wrap">
<h1>{heading}</h1>
<div class="tabs"><span>General</span><span>Products</span><span>History</span><span class="on">Open-line chats</span></div>
<h2 id="b24-title"></h2>
<iframe id="b24-app" name="{frame_name}" src="{src}"></iframe>
{form}
</div>
<script>
(() => {{
  const APP_ORIGIN = {app_origin};
  const SID = {sid};
  let init = {init};
  const COMMANDS = ['getInitData', 'refreshAuth', 'resizeWindow', 'setTitle', 'setScroll', 'reloadWindow',
    'setUserOption', 'setAppOption', 'setInstall', 'setInstallFinish', 'selectUser', 'selectAccess', 'selectCRM',
    'imCallTo', 'imPhoneTo', 'imOpenMessenger', 'imOpenHistory', 'openApplication', 'closeApplication',
    'openPath', 'getInterface', 'placementBindEvent'];
  const frame = document.getElementById('b24-app');
  const log = (entry) => fetch('/_portal/frame/log', {{ method: 'POST', headers: {{ 'content-type': 'application/json' }}, body: JSON.stringify(entry) }});
  window.addEventListener('message', async (event) => {{
    if (typeof event.data !== 'string') return;
    const parts = event.data.split(':');
    const command = parts[0];
    if (event.origin !== APP_ORIGIN) {{ log({{ command, accepted: false, reason: 'origin', origin: event.origin }}); return; }}
    if (parts.length < 3 || parts[parts.length - 1] !== SID) {{ log({{ command, accepted: false, reason: 'sid' }}); return; }}
    const callback = parts[parts.length - 2];
    const raw = parts.slice(1, -2).join(':');
    let params = {{}};
    try {{ params = raw ? JSON.parse(raw) : {{}}; }} catch (e) {{ params = {{}}; }}
    let result;
    switch (command) {{
      case 'getInitData': result = init; break;
      case 'refreshAuth': {{
        const answer = await fetch('/_portal/frame/refresh', {{ method: 'POST', headers: {{ 'content-type': 'application/json' }}, body: JSON.stringify({{ sid: SID }}) }});
        result = await answer.json();
        init = {{ ...init, ...result }};
        break;
      }}
      case 'resizeWindow': {{
        const height = Math.max(40, Math.round(Number(params.height) || 0));
        frame.style.height = height + 'px';
        result = {{ width: params.width ?? '100%', height }};
        break;
      }}
      case 'setTitle': document.getElementById('b24-title').textContent = String(params.title ?? ''); result = {{}}; break;
      case 'getInterface': result = {{ command: COMMANDS, event: [] }}; break;
      case 'setUserOption': init.USER_OPTIONS = {{ ...init.USER_OPTIONS, [params.name]: params.value }}; result = {{}}; break;
      case 'setAppOption': init.APP_OPTIONS = {{ ...init.APP_OPTIONS, [params.name]: params.value }}; result = {{}}; break;
      case 'reloadWindow': location.reload(); return;
      default:
        // The other commands of the protocol change nothing here but are answered,
        // so an app that waits for them does not hang.
        if (!COMMANDS.includes(command)) {{ log({{ command, accepted: false, reason: 'unknown' }}); return; }}
        result = {{}};
    }}
    log({{ command, accepted: true }});
    if (callback) frame.contentWindow.postMessage(callback + ':' + JSON.stringify(result), APP_ORIGIN);
  }});
  const form = document.getElementById('b24-launch');
  if (form) form.submit();
}})();
</script>
</body></html>
"##,
        heading = html_escape(&heading),
        user = html_escape(p.user),
        frame_name = html_escape(p.frame_name),
        src = html_escape(p.src),
        form = p.form,
        app_origin = script_json(&json!(p.app_origin)),
        sid = script_json(&json!(p.sid)),
        init = script_json(p.init),
    )
}

#[derive(Deserialize)]
struct RefreshRequest {
    sid: String,
}

/// The server side of `refreshAuth`: a new token for the frame's user.
async fn refresh(State(app): State<Arc<App>>, bytes: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<RefreshRequest>(&bytes) else {
        return bad("body must be {\"sid\": ...}");
    };
    let session = {
        let store = app.lock();
        store
            .frames
            .sessions
            .iter()
            .find(|s| s.sid == req.sid)
            .map(|s| (s.user_id, s.ttl))
    };
    let Some((user_id, ttl)) = session else {
        return (StatusCode::NOT_FOUND, "no such frame\n").into_response();
    };
    let issued = app.issue_token(user_id, app.config.scope.clone(), ttl);
    Json(json!({
        "AUTH_ID": issued.access_token,
        "AUTH_EXPIRES": issued.ttl.round() as i64,
        "REFRESH_ID": issued.refresh_token,
    }))
    .into_response()
}

async fn read_log(State(app): State<Arc<App>>) -> Response {
    let log = app.lock().frames.log.clone();
    Json(log).into_response()
}

async fn write_log(State(app): State<Arc<App>>, bytes: Bytes) -> Response {
    let Ok(mut entry) = serde_json::from_slice::<LogEntry>(&bytes) else {
        return bad("body must be a log entry");
    };
    let mut store = app.lock();
    entry.at = iso8601(store.clock.now());
    if store.frames.log.len() < 10_000 {
        store.frames.log.push(entry);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "no-store")],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_escaping() {
        assert_eq!(
            origin_of("http://localhost:5173/app/?x=1").as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(
            origin_of("https://a.example").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("ftp://x/"), None);
        assert_eq!(
            html_escape(r#"<a href="x">&"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
        assert_eq!(script_json(&json!("</script>")), r#""<\/script>""#);
    }
}
