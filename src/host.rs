//! Terminal side of the host link: ISO 8583 (`ascii87`, docs/host.md) over TCP, one request
//! outstanding at a time, every wait bounded by a timeout.

use iso8583::{ascii87, Message};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot connect to host {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("host did not answer within {0:?}")]
    Timeout(Duration),
    #[error("host closed the connection")]
    Closed,
    #[error("host link I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot build the request: {0}")]
    Pack(iso8583::Error),
    #[error("unreadable host answer: {0}")]
    Unreadable(iso8583::Error),
}

/// A connection to the acquirer, re-established on demand.
pub struct HostLink {
    pub addr: SocketAddr,
    pub timeout: Duration,
    conn: Option<TcpStream>,
}

/// Reads one length-prefixed frame.
async fn read_frame(s: &mut TcpStream) -> Result<Vec<u8>, HostError> {
    let mut len = [0u8; 2];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(HostError::Closed),
        Err(e) => return Err(e.into()),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await.map_err(|e| if e.kind() == std::io::ErrorKind::UnexpectedEof { HostError::Closed } else { e.into() })?;
    Ok(body)
}

impl HostLink {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        HostLink { addr, timeout, conn: None }
    }

    async fn connection(&mut self) -> Result<&mut TcpStream, HostError> {
        if self.conn.is_none() {
            let s = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
                .await
                .map_err(|_| HostError::Timeout(self.timeout))?
                .map_err(|e| HostError::Connect(self.addr, e))?;
            s.set_nodelay(true)?;
            self.conn = Some(s);
        }
        self.conn.as_mut().ok_or(HostError::Closed)
    }

    /// Sends `req` and reads the next answer on the connection. One request is outstanding at a
    /// time, so the next frame is the answer to it or a fault: whether it belongs to `req` is
    /// decided by [`crate::terminal::answer::check`], never skipped here. Any failure drops the
    /// connection, so a late answer can never be read as the next request's.
    pub async fn exchange(&mut self, req: &Message) -> Result<Message, HostError> {
        let wire = ascii87().pack_framed(req).map_err(HostError::Pack)?;
        let timeout = self.timeout;
        let res = tokio::time::timeout(timeout, async {
            let conn = self.connection().await?;
            conn.write_all(&wire).await?;
            let body = read_frame(conn).await?;
            ascii87().unpack(&body).map_err(HostError::Unreadable)
        })
        .await;
        match res {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(HostError::Timeout(timeout))
            }
        }
    }
}
