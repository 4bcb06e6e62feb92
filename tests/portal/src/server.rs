//! Running the portal: binding, the HTTP/1.1 connection loop (which can drop
//! a connection on request, for the `drop_after_store` fault), CORS on every
//! answer, and the handles that stop it.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tower::Service;

use crate::admin;
use crate::config::{is_url_safe_credential, Config};
use crate::oauth;
use crate::rest;
use crate::state::{App, Secrets, DEFAULT_USER};

/// Lets a handler close its own connection without answering.
#[derive(Clone, Debug)]
pub struct ConnectionControl {
    close: Arc<Notify>,
}

impl ConnectionControl {
    /// Closes the connection carrying the current request; nothing more is
    /// written to it.
    pub fn drop_connection(&self) {
        self.close.notify_one();
    }
}

/// Where a running portal listens and the credentials it printed. Its
/// `Debug` output hides the webhook secret and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalInfo {
    /// Bound address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Default webhook, `http://127.0.0.1:PORT/rest/1/SECRET/`.
    pub webhook: String,
    /// Default access token (user 1).
    pub access_token: String,
    /// Owner of the default webhook and token.
    pub user_id: i64,
    /// Default refresh token (user 1), for `/oauth/token/`.
    pub refresh_token: String,
    /// OAuth `client_id` of the portal's application.
    pub client_id: String,
    /// OAuth `client_secret` of the portal's application.
    pub client_secret: String,
}

impl std::fmt::Debug for PortalInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalInfo")
            .field("addr", &self.addr)
            .field("url", &self.url)
            .field(
                "webhook",
                &format_args!("{}/rest/{}/***/", self.url, self.user_id),
            )
            .field("access_token", &"***")
            .field("user_id", &self.user_id)
            .field("refresh_token", &"***")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

impl PortalInfo {
    /// OAuth `client_endpoint`: `http://127.0.0.1:PORT/rest/`.
    pub fn client_endpoint(&self) -> String {
        format!("{}/rest/", self.url)
    }

    /// The OAuth server's token endpoint: `http://127.0.0.1:PORT/oauth/token/`.
    pub fn oauth_url(&self) -> String {
        format!("{}/oauth/token/", self.url)
    }

    /// The JSON line the CLI prints on start.
    pub fn startup_line(&self) -> String {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct StartupLine<'a> {
            url: &'a str,
            webhook: &'a str,
            client_endpoint: String,
            access_token: &'a str,
            user_id: i64,
            refresh_token: &'a str,
            client_id: &'a str,
            client_secret: &'a str,
            oauth_url: String,
        }
        let line = StartupLine {
            url: &self.url,
            webhook: &self.webhook,
            client_endpoint: self.client_endpoint(),
            access_token: &self.access_token,
            user_id: self.user_id,
            refresh_token: &self.refresh_token,
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            oauth_url: self.oauth_url(),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// A portal running on the caller's Tokio runtime. Dropping the handle stops
/// it, like [`Portal::shutdown`] without waiting.
#[derive(Debug)]
pub struct Portal {
    info: PortalInfo,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Portal {
    /// Address and credentials.
    pub fn info(&self) -> &PortalInfo {
        &self.info
    }

    /// Stops accepting, closes open connections and waits for the loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Binds and starts a portal on the current Tokio runtime.
pub async fn serve(config: Config) -> io::Result<Portal> {
    let given = [
        &config.secret,
        &config.token,
        &config.refresh_token,
        &config.client_id,
        &config.client_secret,
    ];
    if given
        .into_iter()
        .flatten()
        .any(|v| !is_url_safe_credential(v))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "secrets, tokens and client credentials must be non-empty and use only A-Z, a-z, 0-9, '_', '-', '.'",
        ));
    }
    let listener = TcpListener::bind((config.host, config.port)).await?;
    let addr = listener.local_addr()?;
    let url_ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}", SocketAddr::new(url_ip, addr.port()));
    let secrets = Secrets::from_config(&config);
    let app = Arc::new(App::new(config, url.clone(), secrets));
    let info = PortalInfo {
        addr,
        webhook: app.webhook_url(DEFAULT_USER, &app.secrets.secret),
        access_token: app.secrets.token.clone(),
        url,
        user_id: DEFAULT_USER,
        refresh_token: app.secrets.refresh_token.clone(),
        client_id: app.secrets.client_id.clone(),
        client_secret: app.secrets.client_secret.clone(),
    };
    let router = admin::routes()
        .merge(oauth::routes())
        .fallback(rest::handle)
        .with_state(Arc::clone(&app));
    let (shutdown, stop) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, router, app, stop));
    Ok(Portal {
        info,
        shutdown,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(
                        stream,
                        router.clone(),
                        Arc::clone(&app),
                        stop.clone(),
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = stop.changed() => break,
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) {
    let close = Arc::new(Notify::new());
    let control = ConnectionControl {
        close: Arc::clone(&close),
    };
    let service = service_fn(move |request| {
        let router = router.clone();
        let control = control.clone();
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(respond(router, &app, control, request).await) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    // Returning drops the connection and its socket, mid-request or not.
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = close.notified() => {}
        _ = stop.changed() => {}
    }
}

/// Answers preflights (counting those of REST calls), routes everything else,
/// and adds CORS headers to every answer.
async fn respond(
    mut router: Router,
    app: &App,
    control: ConnectionControl,
    mut request: Request<Incoming>,
) -> Response {
    if request.method() == Method::OPTIONS {
        count_preflight(app, request.uri().path());
        let mut response = StatusCode::OK.into_response();
        add_cors(response.headers_mut());
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        return response;
    }
    request.extensions_mut().insert(control);
    let mut response = match router.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    add_cors(response.headers_mut());
    response
}

/// Counts a CORS preflight (`OPTIONS`) if it comes before a REST call.
pub fn count_preflight(app: &App, path: &str) {
    if path.starts_with("/rest/") {
        app.lock().ledger.counters.preflights += 1;
    }
}

/// The CORS headers the server sends on every REST answer (SRV-UTIL).
fn add_cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("origin, content-type, accept"),
    );
}

/// A portal on its own thread and runtime, for synchronous callers such as
/// plain `#[test]` functions. Dropping it stops the portal and joins the
/// thread.
#[derive(Debug)]
pub struct PortalThread {
    info: PortalInfo,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PortalThread {
    /// Address and credentials.
    pub fn info(&self) -> &PortalInfo {
        &self.info
    }
}

impl Drop for PortalThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a portal on a new thread with its own Tokio runtime and returns
/// once it listens.
pub fn serve_in_thread(config: Config) -> io::Result<PortalThread> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<PortalInfo>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("b24-portal".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                match serve(config).await {
                    Ok(portal) => {
                        let _ = ready_tx.send(Ok(portal.info().clone()));
                        let _ = stop_rx.await;
                        portal.shutdown().await;
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                }
            });
        })?;
    let info = ready_rx
        .recv()
        .map_err(|_| io::Error::other("the portal thread exited before listening"))??;
    Ok(PortalThread {
        info,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}
