//! `b24-portal`: runs a local Bitrix24 portal and prints one JSON line with
//! its URL, default webhook and access token.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use b24_portal::{Config, NonMemberCode, DEFAULT_SCOPE};
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
