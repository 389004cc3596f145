//! The injector's front: a small hyper server that owns the port.
//!
//! Owning the port is what makes connection faults possible: a refuse
//! outage closes the listening socket (and the open connections), so clients
//! get "connection refused", and the same port is bound again when the
//! outage ends; a reset ends a connection with RST.

mod body;
mod conn;
mod service;
mod timer;

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use socket2::{Domain, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::injector::Core;
use crate::program::deadline_or_far;
use conn::{ConnIo, ResetSwitch};

/// How long to wait before binding again when the port is not free yet.
const REBIND_RETRY: Duration = Duration::from_millis(5);

/// Binds a listening socket that can be closed and bound again at once
/// (SO_REUSEADDR), with a backlog deep enough for load tests.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The listening socket, opened and closed as refuse faults demand.
///
/// Whoever changes the fault program applies the gate right away, so when
/// `inject(Fault::refuse())` returns new connections are already refused, and
/// when the fault is cleared the kernel already accepts them (the accept loop
/// picks them from the backlog).
pub(crate) struct Gate {
    addr: SocketAddr,
    state: Mutex<GateState>,
}

enum Listening {
    Closed,
    /// Bound by a caller outside the accept loop; the loop registers it
    /// with the runtime.
    Bound(std::net::TcpListener),
    Serving(Arc<TcpListener>),
}

struct GateState {
    listening: Listening,
    /// Cancelled when the gate closes: ends every open connection.
    connections: CancellationToken,
    root: CancellationToken,
}

impl Gate {
    pub(crate) fn new(
        listener: std::net::TcpListener,
        shutdown: &CancellationToken,
    ) -> io::Result<Self> {
        Ok(Self {
            addr: listener.local_addr()?,
            state: Mutex::new(GateState {
                listening: Listening::Bound(listener),
                connections: shutdown.child_token(),
                root: shutdown.clone(),
            }),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the gate when `refusing`, opens it otherwise; a no-op when it
    /// already is as asked.
    /// Once the injector shuts down the gate stays closed, whatever is asked:
    /// a late flapping toggle must not bind the port again.
    pub(crate) fn apply(&self, refusing: bool) -> io::Result<()> {
        let mut state = self.lock();
        let refusing = refusing || state.root.is_cancelled();
        match (&state.listening, refusing) {
            (Listening::Closed, false) => {
                state.listening = Listening::Bound(bind(self.addr)?);
            }
            (Listening::Bound(_) | Listening::Serving(_), true) => {
                if let Listening::Serving(l) = &state.listening {
                    // The accept loop holds a clone of this listener, so
                    // dropping ours would not close it. Shutting it down
                    // (Linux) stops the listen at once: new connections are
                    // refused and the loop's accept() fails, so it lets go.
                    let _ = SockRef::from(l.as_ref()).shutdown(Shutdown::Read);
                }
                state.listening = Listening::Closed;
                state.connections.cancel();
                state.connections = state.root.child_token();
            }
            _ => {}
        }
        Ok(())
    }

    /// The listener to accept on (None while closed) and the token that
    /// closes connections accepted now.
    fn current(&self) -> io::Result<(Option<Arc<TcpListener>>, CancellationToken)> {
        let mut state = self.lock();
        if matches!(state.listening, Listening::Bound(_))
            && let Listening::Bound(std) =
                std::mem::replace(&mut state.listening, Listening::Closed)
        {
            state.listening = Listening::Serving(Arc::new(TcpListener::from_std(std)?));
        }
        let listener = match &state.listening {
            Listening::Serving(l) => Some(Arc::clone(l)),
            _ => None,
        };
        Ok((listener, state.connections.clone()))
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Accepts connections until `shutdown`, following the gate as refuse
/// faults switch on and off (flapping included).
pub(crate) async fn serve(core: Arc<Core>, shutdown: CancellationToken) {
    let mut changes = core.control.subscribe();
    let mut scheduled = None;
    loop {
        let now = Instant::now();
        let (refusing, toggle) = {
            let program = core.control.peek();
            (program.refusing(now), program.next_toggle(now))
        };
        // The timer thread opens or closes the port at the toggle itself, so
        // a flapping refuse keeps its schedule while this runtime is busy;
        // this loop then only registers the listener it finds.
        if let Some(at) = toggle
            && scheduled != Some(at)
        {
            let weak = Arc::downgrade(&core);
            if timer::call_at(at, move || {
                if let Some(core) = weak.upgrade() {
                    core.sync_gate();
                }
            }) {
                scheduled = Some(at);
            }
        }
        let mut retry = None;
        if let Err(e) = core.gate.apply(refusing) {
            tracing::warn!(injector = %core.name, "cannot bind {} again yet: {e}", core.gate.addr());
            retry = Some(now + REBIND_RETRY);
        }
        let (listener, connections) = match core.gate.current() {
            Ok(current) => current,
            Err(e) => {
                tracing::error!(injector = %core.name, "cannot register the listener: {e}");
                retry = Some(now + REBIND_RETRY);
                (None, shutdown.child_token())
            }
        };
        let wake = [toggle, retry].into_iter().flatten().min();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(deadline_or_far(wake).into()) => {}
            accepted = accept(listener.as_deref()) => match accepted {
                Ok(stream) => spawn_connection(Arc::clone(&core), stream, connections),
                // Closed by the gate (refuse), or out of file descriptors:
                // re-read the gate after a short pause rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            },
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

fn spawn_connection(core: Arc<Core>, stream: TcpStream, closed: CancellationToken) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let reset = ResetSwitch::default();
        let io = TokioIo::new(ConnIo::new(stream, reset.clone()));
        let service =
            service_fn(move |request| service::handle(Arc::clone(&core), reset.clone(), request));
        let connection = http1::Builder::new().serve_connection(io, service);
        tokio::select! {
            _ = connection => {}
            _ = closed.cancelled() => {}
        }
    });
}
