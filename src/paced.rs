//! A body held to a download rate (`limit_rate`; docs/operations.md
//! "Download rate") for connections served through hyper (TLS, HTTP/2):
//! frames larger than the pacer allows are split, and the body sleeps on a
//! timer between parts (no polling loop). Plain HTTP/1.1 paces in
//! [`crate::h1::send`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::body::{Body, BodyError};
use crate::pace::{Pacer, RateSpec, Step};

/// `inner` paced at `spec`, the clock starting now.
pub fn paced(inner: Body, spec: RateSpec) -> Body {
    crate::body::stream(Paced {
        inner,
        pacer: Pacer::new(spec, Instant::now()),
        pending: Bytes::new(),
        sleep: None,
    })
}

struct Paced {
    inner: Body,
    pacer: Pacer,
    /// Data taken from `inner` and not yet passed on.
    pending: Bytes,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if let Some(s) = this.sleep.as_mut() {
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            if this.pending.is_empty() {
                match Pin::new(&mut this.inner).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Some(Ok(f))) => match f.into_data() {
                        Ok(d) => this.pending = d,
                        Err(f) => return Poll::Ready(Some(Ok(f))),
                    },
                }
                if this.pending.is_empty() {
                    continue;
                }
            }
            match this.pacer.next(this.pending.len() as u64, Instant::now()) {
                Step::Send(n) => {
                    let n = usize::try_from(n)
                        .unwrap_or(usize::MAX)
                        .min(this.pending.len());
                    let part = this.pending.split_to(n);
                    this.pacer.sent(n as u64);
                    return Poll::Ready(Some(Ok(Frame::data(part))));
                }
                Step::Wait(d) => {
                    this.sleep = Some(Box::pin(tokio::time::sleep(d)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let extra = self.pending.len() as u64;
        let mut h = SizeHint::new();
        h.set_lower(inner.lower() + extra);
        if let Some(u) = inner.upper() {
            h.set_upper(u + extra);
        }
        h
    }
}
