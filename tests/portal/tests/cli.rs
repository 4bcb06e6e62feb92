//! The `b24-portal` binary: startup line, flags, logging, clean exit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

fn spawn(args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_b24-portal"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("startup line");
    let info = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("startup line is not JSON ({e}): {line:?}"));
    (child, info)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    child.wait().expect("child exits")
}

#[test]
fn prints_one_json_line_and_serves_the_printed_webhook() {
    let (mut child, info) = spawn(&[
        "--port",
        "0",
        "--secret",
        "hook-secret",
        "--token",
        "tok.en_1",
        "--log",
    ]);
    let url = info["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        info,
        json!({
            "url": url,
            "webhook": format!("{url}/rest/1/hook-secret/"),
            "clientEndpoint": format!("{url}/rest/"),
            "accessToken": "tok.en_1",
            "userId": 1,
            "refreshToken": info["refreshToken"],
            "clientId": info["clientId"],
            "clientSecret": info["clientSecret"],
            "oauthUrl": format!("{url}/oauth/token/")
        })
    );
    let mut resp = agent()
        .post(&format!("{}imopenlines.crm.message.add", info["webhook"].as_str().unwrap()))
        .header("Content-Type", "application/json")
        .send(r#"{"CRM_ENTITY_TYPE":"deal","CRM_ENTITY":288,"USER_ID":12,"CHAT_ID":8773,"MESSAGE":"hi"}"#)
        .unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["result"], json!(19880117));
    let mut resp = agent()
        .get(&format!("{url}/rest/profile?auth=tok.en_1"))
        .call()
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.body_mut().read_to_string().unwrap()
    );

    assert!(terminate(&mut child).success(), "clean exit on SIGTERM");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("POST imopenlines.crm.message.add 200"),
        "{stderr}"
    );
    assert!(stderr.contains("GET profile 200"), "{stderr}");
    assert!(
        !stderr.contains("hook-secret") && !stderr.contains("tok.en_1"),
        "{stderr}"
    );
}

#[test]
fn default_credentials_are_random() {
    let (mut a, info_a) = spawn(&[]);
    let (mut b, info_b) = spawn(&[]);
    assert_ne!(info_a["accessToken"], info_b["accessToken"]);
    assert_ne!(info_a["webhook"], info_b["webhook"]);
    assert!(info_a["accessToken"].as_str().unwrap().len() >= 32);
    terminate(&mut a);
    terminate(&mut b);
}

#[test]
fn float_time_and_non_member_code_flags() {
    let (mut child, info) = spawn(&["--float-time", "--non-member-code", "MESSAGE_ADD_ERROR"]);
    let hook = info["webhook"].as_str().unwrap();
    let mut resp = agent().get(&format!("{hook}server.time")).call().unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert!(body["time"]["start"].is_f64(), "{body}");
    let mut resp = agent()
        .get(&format!(
            "{hook}imopenlines.crm.message.add?CRM_ENTITY_TYPE=deal&CRM_ENTITY=288&USER_ID=14&CHAT_ID=8773&MESSAGE=x"
        ))
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"], json!("MESSAGE_ADD_ERROR"));
    terminate(&mut child);
}

#[test]
fn limit_and_oauth_flags() {
    let (mut child, info) = spawn(&[
        "--rate-limit",
        "--rate-burst",
        "2",
        "--rate-drain",
        "0.001",
        "--client-id",
        "app.1",
        "--client-secret",
        "s3cret",
        "--refresh-token",
        "refresh.1",
    ]);
    assert_eq!(
        (
            &info["clientId"],
            &info["clientSecret"],
            &info["refreshToken"]
        ),
        (&json!("app.1"), &json!("s3cret"), &json!("refresh.1"))
    );
    let hook = info["webhook"].as_str().unwrap();
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            agent()
                .get(&format!("{hook}profile"))
                .call()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [200, 200, 503]);
    let oauth = info["oauthUrl"].as_str().unwrap();
    let mut resp = agent()
        .get(&format!(
            "{oauth}?grant_type=refresh_token&client_id=app.1&client_secret=s3cret&refresh_token=refresh.1"
        ))
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["user_id"], json!(1), "{body}");
    terminate(&mut child);
}

#[test]
fn help_lists_the_flags_and_bad_flags_fail() {
    let out = Command::new(env!("CARGO_BIN_EXE_b24-portal"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--port",
        "--host",
        "--secret",
        "--token",
        "--token-ttl",
        "--float-time",
        "--non-member-code",
        "--scope",
        "--log",
        "--refresh-ttl",
        "--refresh-token",
        "--client-id",
        "--client-secret",
        "--rate-limit",
        "--rate-burst",
        "--rate-drain",
        "--operating-limit",
        "--operating-limit-secs",
        "--operating-cost",
        "--time-scale",
        "--history-text",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_b24-portal"))
        .args(["--secret", "a/b"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty(), "no startup line on failure");
}
