//! `hyper-hello ADDR`: an HTTP/1.1 server on hyper 0.14's `Server::bind`.
//!
//! `GET /anything` answers `Hello from /anything` (200, text/plain); a `POST` answers with the body
//! it received, upper-cased; `GET /shutdown` answers `bye` and stops the server gracefully, so the
//! process exits 0 after the last connection is done. Prints `listening on <addr>` first, so a
//! caller that passed port 0 learns the port.

use std::convert::Infallible;
use std::env;
use std::net::SocketAddr;
use std::process;
use std::sync::{Arc, Mutex};

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Method, Request, Response, Server, StatusCode};
use tokio::sync::oneshot;

type Stopper = Arc<Mutex<Option<oneshot::Sender<()>>>>;

async fn answer(request: Request<Body>, stopper: Stopper) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    let response = match (request.method().clone(), path.as_str()) {
        (Method::GET, "/shutdown") => {
            if let Some(stop) = stopper.lock().unwrap().take() {
                let _ = stop.send(());
            }
            Response::new(Body::from("bye\n"))
        }
        (Method::GET, _) => Response::new(Body::from(format!("Hello from {}\n", path))),
        (Method::POST, _) => match hyper::body::to_bytes(request.into_body()).await {
            Ok(body) => Response::new(Body::from(body.to_ascii_uppercase())),
            Err(error) => status(StatusCode::BAD_REQUEST, &error.to_string()),
        },
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n"),
    };
    Ok(response)
}

fn status(code: StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(text.to_string()));
    *response.status_mut() = code;
    response
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr: SocketAddr = match env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(addr)) => addr,
        _ => {
            eprintln!("usage: hyper-hello ADDR (an IP address and port, e.g. 127.0.0.1:8080)");
            process::exit(2);
        }
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let stopper: Stopper = Arc::new(Mutex::new(Some(stop)));
    let make_service = make_service_fn(move |_connection| {
        let stopper = stopper.clone();
        async move { Ok::<_, Infallible>(service_fn(move |request| answer(request, stopper.clone()))) }
    });
    let server = match Server::try_bind(&addr) {
        Ok(builder) => builder.serve(make_service),
        Err(error) => {
            eprintln!("hyper-hello: cannot listen on {}: {}", addr, error);
            process::exit(1);
        }
    };
    println!("listening on {}", server.local_addr());
    let graceful = server.with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    if let Err(error) = graceful.await {
        eprintln!("hyper-hello: {}", error);
        process::exit(1);
    }
}
