//! The parent side of an iframe app: a page that opens an app URL the way a Bitrix24
//! portal's application layout does and answers the app's `postMessage` commands.
//!
//! `GET /_portal/frame?app=URL` issues an access token for the chosen user, names the
//! iframe `DOMAIN|PROTOCOL|APP_SID`, and POSTs `AUTH_ID`, `AUTH_EXPIRES`, `REFRESH_ID`,
//! `PLACEMENT`, `PLACEMENT_OPTIONS` (JSON text, only when there are options)... into it
//! (or, with `transport=get`, puts them in the query, so a static host works). The
//! page's script reads messages only from the app's origin and with the frame's
//! APP_SID, drops the placement's denied commands without an answer (`setTitle`,
//! `setScroll`, `reloadWindow` outside `DEFAULT`, or the `deny` list given), and
//! answers the rest as the portal's layout does: `getInitData` (placement options as
//! an object, values written the way the portal's PHP-to-JS encoder writes them),
//! `refreshAuth` (a new token from this portal, with the frame's lifetime),
//! `resizeWindow` (the frame's size in pixels), `setTitle`, `setScroll`, the option
//! setters, `getInterface`, `openPath`. Commands that open portal UI (pickers,
//! sliders, the messenger) are accepted and never answered. Every decision goes to
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
    #[serde(default)]
    answered: bool,
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
    #[serde(default)]
    deny: Option<String>,
}

/// Commands a layout denies outside the `DEFAULT` placement.
pub const PLACEMENT_DENIED: [&str; 3] = ["setTitle", "setScroll", "reloadWindow"];

/// The commands the page drops for `placement`: the `deny` list when given (comma
/// separated, may be empty), else the portal's default for the placement.
fn denied_commands(placement: &str, deny: Option<&str>) -> Vec<String> {
    match deny {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        None if placement == "DEFAULT" => Vec::new(),
        None => PLACEMENT_DENIED.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// A PHP array decoded from JSON, as the portal's PHP-to-JS encoder writes it into the
/// page: strings stay strings, integers and floats become strings, booleans stay
/// booleans, null becomes `""`, an array with keys 0..n (or an empty one) becomes a
/// JS array, any other array an object.
fn php_js(value: &Value) -> Value {
    match value {
        Value::Null => Value::String(String::new()),
        Value::Bool(_) | Value::String(_) => value.clone(),
        Value::Number(n) => Value::String(php_number(n)),
        Value::Array(items) => Value::Array(items.iter().map(php_js).collect()),
        Value::Object(map) => {
            let is_list = map.keys().all(|k| {
                k.parse::<usize>()
                    .is_ok_and(|i| i < map.len() && i.to_string() == *k)
            });
            if is_list {
                Value::Array(map.values().map(php_js).collect())
            } else {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), php_js(v))).collect())
            }
        }
    }
}

/// A JSON number as PHP prints it: integers as such, whole floats without `.0`.
fn php_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{}", f as i64)
        }
        _ => n.to_string(),
    }
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
    let options: Value = match query.options.as_deref().map(serde_json::from_str::<Value>) {
        None => json!({}),
        Some(Ok(v)) if v.is_object() => v,
        Some(_) => return bad("options must be a JSON object"),
    };
    let has_options = options.as_object().is_some_and(|o| !o.is_empty());
    let denied = denied_commands(&placement, query.deny.as_deref());
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
    let mut fields: Vec<(&str, String)> = vec![
        ("AUTH_ID", issued.access_token.clone()),
        ("AUTH_EXPIRES", expires_in.to_string()),
        ("REFRESH_ID", issued.refresh_token.clone()),
        ("SERVER_ENDPOINT", format!("{}/rest/", app.base_url)),
        ("member_id", app.secrets.member_id.clone()),
        ("status", "L".to_owned()),
        ("PLACEMENT", placement.clone()),
    ];
    // The portal posts the options as JSON text, and only when there are some.
    if has_options {
        fields.push(("PLACEMENT_OPTIONS", options.to_string()));
    }
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
        "AUTH_EXPIRES": expires_in.to_string(),
        "REFRESH_ID": issued.refresh_token,
        "MEMBER_ID": app.secrets.member_id,
        "FIRST_RUN": false,
        "IS_ADMIN": user.admin,
        "INSTALL": false,
        "USER_OPTIONS": [],
        "APP_OPTIONS": [],
        "PLACEMENT": placement,
        "PLACEMENT_OPTIONS": php_js(&options),
    });
    let crm = placement.starts_with("CRM_");
    let heading = match (placement.as_str(), &options) {
        (p, o) if p.starts_with("CRM_") => {
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
        placement: &placement,
        denied: &denied,
        crm,
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
    placement: &'a str,
    denied: &'a [String],
    crm: bool,
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
    let tabs = if p.crm {
        r#"<div class="tabs"><span>General</span><span>Products</span><span>History</span><span class="on">Open-line chats</span></div>"#
    } else {
        ""
    };
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<style>
body {{ margin: 0; font: 14px/1.4 "Helvetica Neue", Arial, sans-serif; background: #eef2f4; color: #333; }}
.top {{ background: #2fc6f6; color: #fff; padding: 10px 22px; display: flex; justify-content: space-between; font-weight: 600; }}
.top span {{ font-weight: 400; opacity: .9; }}
.wrap {{ padding: 18px 22px; }}
h1 {{ font-size: 22px; font-weight: 400; margin: 0 0 12px; }}
.tabs {{ display: flex; gap: 4px; margin-bottom: 14px; }}
.tabs span {{ padding: 7px 14px; border-radius: 16px; background: #fff; color: #828b95; }}
.tabs span.on {{ background: #535c69; color: #fff; }}
#b24-layout {{ width: 100%; height: 300px; border-radius: 10px; overflow: hidden; }}
#b24-app {{ width: 100%; height: 100%; border: 0; display: block; background: transparent; }}
</style></head>
<body>
<div class="top">Bitrix24 · local portal <span>{user}</span></div>
<div class="wrap">
<h1 id="pagetitle">{heading}</h1>
{tabs}
<div id="b24-layout"><iframe id="b24-app" name="{frame_name}" src="{src}"></iframe></div>
{form}
</div>
<script>
(() => {{
  const APP_ORIGIN = {app_origin};
  const SID = {sid};
  const PLACEMENT = {placement};
  const DENIED = {denied};
  let init = {init};
  const appOptions = {{}};
  const layout = document.getElementById('b24-layout');
  const frame = document.getElementById('b24-app');
  const log = (entry) => fetch('/_portal/frame/log', {{ method: 'POST', keepalive: true, headers: {{ 'content-type': 'application/json' }}, body: JSON.stringify(entry) }});
  // Paths openPath may open in a slider: CRM items, the market, a user, a group.
  const OPEN_PATHS = /^\/(crm\/(deal|lead|contact|company)|marketplace|company\/personal\/user\/\d+|workgroups\/group\/\d+)\//;
  const answer = (result) => ({{ answered: true, result }});
  const silent = (reason) => ({{ answered: false, reason }});
  const commands = {{
    getInitData: () => answer(init),
    // The portal lists only the commands and events a placement adds to the common
    // protocol; this portal's placements add none.
    getInterface: () => answer({{ command: [], event: [] }}),
    refreshAuth: async () => {{
      const res = await fetch('/_portal/frame/refresh', {{ method: 'POST', headers: {{ 'content-type': 'application/json' }}, body: JSON.stringify({{ sid: SID }}) }});
      const fresh = await res.json();
      init = {{ ...init, ...fresh }};
      return answer(fresh);
    }},
    resizeWindow: (params) => {{
      const width = params.width == '100%' ? '100%' : (parseInt(params.width, 10) || 100) + 'px';
      const height = parseInt(params.height, 10);
      layout.style.width = width;
      if (height) layout.style.height = height + 'px';
      const box = layout.getBoundingClientRect();
      return answer({{ width: Math.round(box.width), height: Math.round(box.height) }});
    }},
    setTitle: (params) => {{
      document.getElementById('pagetitle').textContent = params.title;
      document.title = params.title;
      return answer(params);
    }},
    setScroll: (params) => {{
      if (params && params.scroll !== undefined && params.scroll >= 0) window.scrollTo(window.scrollX, parseInt(params.scroll, 10));
      return answer(params);
    }},
    setUserOption: (params) => {{ init.USER_OPTIONS[params.name] = params.value; return answer(params); }},
    setAppOption: (params) => {{
      if (!init.IS_ADMIN) return silent('not an admin');
      appOptions[params.name] = params.value;
      return answer({{ ...appOptions }});
    }},
    setInstall: (params) => answer(params),
    setInstallFinish: () => {{
      const url = new URL(location.href);
      url.searchParams.set('install_finished', 'Y');
      setTimeout(() => location.assign(url), 50);
      return silent('reloads the page');
    }},
    reloadWindow: () => {{ setTimeout(() => location.reload(), 50); return silent('reloads the page'); }},
    selectUser: () => silent('no picker here'),
    selectAccess: () => silent('no picker here'),
    selectCRM: () => silent('no picker here'),
    imCallTo: () => silent('messenger command'),
    imPhoneTo: () => silent('messenger command'),
    imOpenMessenger: () => silent('messenger command'),
    imOpenHistory: () => silent('messenger command'),
    openApplication: () => silent('no slider here'),
    openPath: (params) => (typeof params.path === 'string' && OPEN_PATHS.test(params.path)
      ? silent('no slider here')
      : answer({{ result: 'error', errorCode: 'PATH_NOT_AVAILABLE' }})),
    closeApplication: () => silent('not in a slider'),
  }};
  if (PLACEMENT !== 'DEFAULT') commands.placementBindEvent = () => silent('no placement events');
  window.addEventListener('message', async (event) => {{
    let command;
    let callback;
    let sid;
    let params = [];
    if (event.origin !== APP_ORIGIN) {{
      log({{ command: typeof event.data === 'string' ? event.data.split(':')[0] : String(event.data?.method ?? ''), accepted: false, reason: 'origin', origin: event.origin }});
      return;
    }}
    if (typeof event.data === 'string') {{
      // command:params:callback:APP_SID, where params (JSON) may contain colons.
      const parts = event.data.split(':');
      command = parts[0];
      callback = parts[parts.length - 2];
      sid = parts[parts.length - 1];
      const raw = parts.slice(1, -2).join(':');
      if (raw) {{
        try {{ params = JSON.parse(raw); }} catch (e) {{ log({{ command, accepted: false, reason: 'params' }}); return; }}
      }}
    }} else if (event.data && typeof event.data === 'object') {{
      command = event.data.method;
      callback = event.data.callback;
      sid = event.data.appSid;
      params = event.data.params || [];
    }} else {{
      return;
    }}
    command = String(command ?? '');
    if (sid !== SID) {{ log({{ command, accepted: false, reason: 'sid' }}); return; }}
    if (!Object.hasOwn(commands, command)) {{ log({{ command, accepted: false, reason: 'unknown' }}); return; }}
    if (DENIED.includes(command)) {{ log({{ command, accepted: false, reason: 'denied' }}); return; }}
    const outcome = await commands[command](params ?? []);
    log({{ command, accepted: true, answered: outcome.answered && !!callback, reason: outcome.reason }});
    if (outcome.answered && callback) {{
      const text = outcome.result === undefined ? '' : JSON.stringify(outcome.result);
      frame.contentWindow.postMessage(callback + ':' + text, APP_ORIGIN);
    }}
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
        placement = script_json(&json!(p.placement)),
        denied = script_json(&json!(p.denied)),
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
        "AUTH_EXPIRES": (issued.ttl.round() as i64).to_string(),
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

    #[test]
    fn options_are_written_as_the_portal_encoder_writes_php_arrays() {
        assert_eq!(
            php_js(&json!({"ID": 288, "F": 1.0, "P": 2.5, "B": false, "N": null, "S": "x"})),
            json!({"ID": "288", "F": "1", "P": "2.5", "B": false, "N": "", "S": "x"})
        );
        assert_eq!(php_js(&json!({})), json!([]));
        assert_eq!(php_js(&json!({"0": "a", "1": 2})), json!(["a", "2"]));
        assert_eq!(php_js(&json!({"1": "a"})), json!({"1": "a"}));
        assert_eq!(
            php_js(&json!({"A": {"B": [3]}})),
            json!({"A": {"B": ["3"]}})
        );
    }

    #[test]
    fn the_deny_list_defaults_by_placement() {
        assert!(denied_commands("DEFAULT", None).is_empty());
        assert_eq!(
            denied_commands("CRM_LEAD_DETAIL_TAB", None),
            PLACEMENT_DENIED
        );
        assert_eq!(
            denied_commands("DEFAULT", Some(" setTitle ,,resizeWindow")),
            ["setTitle", "resizeWindow"]
        );
    }
}
