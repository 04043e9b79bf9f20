//! `reqwest-get URL`: GET the URL with an async reqwest client, print `status: <code>` and the
//! body's length on stdout, then the body itself. Exits 1 when the request fails or the status is
//! not a success, 2 on bad arguments.

use std::env;
use std::process;

async fn fetch(url: &str) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
    let client = reqwest::Client::builder().build()?;
    let response = client.get(url).header("user-agent", "reqwest-get").send().await?;
    let status = response.status();
    let body = response.text().await?;
    Ok((status, body))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = match env::args().nth(1) {
        Some(url) => url,
        None => {
            eprintln!("usage: reqwest-get URL");
            process::exit(2);
        }
    };
    match fetch(&url).await {
        Ok((status, body)) => {
            println!("status: {}", status.as_u16());
            println!("length: {}", body.len());
            print!("{}", body);
            if !status.is_success() {
                process::exit(1);
            }
        }
        Err(error) => {
            eprintln!("reqwest-get: {}", error);
            process::exit(1);
        }
    }
}
