//! `b24-portal`: runs a local Bitrix24 portal and prints one JSON line with
//! its URL, default webhook and access token.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use b24_portal::{Config, HistoryText, NonMemberCode, OperatingLimit, RateLimit, DEFAULT_SCOPE};
use clap::Parser;

/// A local Bitrix24 portal serving the imopenlines.crm.* REST methods.
#[derive(Parser, Debug)]
#[command(name = "b24-portal", version, about, long_about = None)]
struct Cli {
    /// Port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Secret of the default webhook (random if omitted).
    #[arg(long)]
    secret: Option<String>,
    /// Value of the default access token (random if omitted).
    #[arg(long)]
    token: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    token_ttl: u64,
    /// Send time.start and time.processing as floats (older servers).
    #[arg(long)]
    float_time: bool,
    /// Error for a message sender that is not a chat member.
    #[arg(long, value_enum, default_value_t = NonMemberCode::Canceled)]
    non_member_code: NonMemberCode,
    /// Scopes of the default webhook and token, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SCOPE.map(String::from))]
    scope: Vec<String>,
    /// Log one line per REST request to stderr (never secrets or tokens).
    #[arg(long)]
    log: bool,
    /// Lifetime of refresh tokens, in seconds (180 days by default).
    #[arg(long, value_name = "SECS", default_value_t = 180 * 24 * 3600)]
    refresh_ttl: u64,
    /// Value of the default refresh token (random if omitted).
    #[arg(long)]
    refresh_token: Option<String>,
    /// OAuth client_id of the portal's application (random if omitted).
    #[arg(long)]
    client_id: Option<String>,
    /// OAuth client_secret of the portal's application (random if omitted).
    #[arg(long)]
    client_secret: Option<String>,
    /// Refuse requests beyond the leaky bucket with 503 QUERY_LIMIT_EXCEEDED.
    #[arg(long)]
    rate_limit: bool,
    /// Leaky bucket size (requests); 50, or 250 on Enterprise plans.
    #[arg(long, value_name = "N", default_value_t = 50.0)]
    rate_burst: f64,
    /// Leaky bucket drain, requests per second; 2, or 5 on Enterprise plans.
    #[arg(long, value_name = "PER_SEC", default_value_t = 2.0)]
    rate_drain: f64,
    /// Refuse calls of a method whose operating time over ten minutes exceeds
    /// the limit, with 429 OPERATION_TIME_LIMIT.
    #[arg(long)]
    operating_limit: bool,
    /// Operating-time limit per method, in seconds per ten minutes.
    #[arg(long, value_name = "SECS", default_value_t = 480.0)]
    operating_limit_secs: f64,
    /// Seconds each call counts towards the operating time instead of its
    /// measured execution time.
    #[arg(long, value_name = "SECS")]
    operating_cost: Option<f64>,
    /// Portal seconds per real second (e.g. 60: a real second is a portal
    /// minute); drives token expiry, limits and every time field.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    time_scale: f64,
    /// What im.dialog.messages.get returns as a message's text: parsed by the
    /// messenger's text parser (current portals) or as stored (old portals).
    #[arg(long, value_enum, default_value_t = HistoryText::Parsed)]
    history_text: HistoryText,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config {
        host: cli.host,
        port: cli.port,
        secret: cli.secret,
        token: cli.token,
        token_ttl: Duration::from_secs(cli.token_ttl),
        float_time: cli.float_time,
        non_member_code: cli.non_member_code,
        scope: cli.scope,
        log: cli.log,
        refresh_ttl: Duration::from_secs(cli.refresh_ttl),
        refresh_token: cli.refresh_token,
        client_id: cli.client_id,
        client_secret: cli.client_secret,
        rate_limit: RateLimit {
            enabled: cli.rate_limit,
            burst: cli.rate_burst,
            drain_per_second: cli.rate_drain,
        },
        operating_limit: OperatingLimit {
            enabled: cli.operating_limit,
            limit_seconds: cli.operating_limit_secs,
            cost_seconds: cli.operating_cost,
        },
        time_scale: cli.time_scale,
        history_text: cli.history_text,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("b24-portal: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("b24-portal: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> std::io::Result<()> {
    let portal = b24_portal::serve(config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", portal.info().startup_line())?;
    stdout.flush()?;
    drop(stdout);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
    }
    portal.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            sigterm.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending::<()>().await;
}
