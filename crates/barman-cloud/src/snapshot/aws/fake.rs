//! A scripted EC2 endpoint for unit tests: answers each request with what a closure
//! returns for its form parameters, and keeps every request's parameters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ec2::{Ec2Client, RetryPolicy};

/// A request's form parameters, decoded.
pub type Form = Vec<(String, String)>;

/// The value of `name` in `form`.
pub fn param<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

type Responder = dyn Fn(&Form) -> (u16, String) + Send + Sync;

pub struct FakeEc2 {
    pub endpoint: String,
    requests: Arc<Mutex<Vec<Form>>>,
}

impl FakeEc2 {
    pub async fn start(respond: impl Fn(&Form) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let respond = respond.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut socket).await else {
                        return;
                    };
                    let form: Form = body
                        .split('&')
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(n, v)| (decode(n), decode(v)))
                        .collect();
                    seen.lock().unwrap().push(form.clone());
                    let (status, text) = respond(&form);
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        FakeEc2 { endpoint, requests }
    }

    /// A client of this endpoint with fast retries.
    pub fn client(&self) -> Ec2Client {
        let creds: object_store::aws::AwsCredentialProvider = Arc::new(
            object_store::StaticCredentialProvider::new(object_store::aws::AwsCredential {
                key_id: "AKIDFAKE".into(),
                secret_key: "fake-secret".into(),
                token: None,
            }),
        );
        Ec2Client::new(&self.endpoint, "us-east-1", creds)
            .unwrap()
            .with_retry_policy(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            })
    }

    pub fn requests(&self) -> Vec<Form> {
        self.requests.lock().unwrap().clone()
    }

    /// The `Action` of every request so far.
    pub fn actions(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|f| param(f, "Action").unwrap_or_default().to_string())
            .collect()
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(
                    String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned(),
                );
            }
        }
    }
}

/// An EC2 error document.
pub fn error(code: &str, message: &str) -> String {
    format!(
        "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r</RequestID></Response>"
    )
}
